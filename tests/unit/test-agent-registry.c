/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent registry's rules with identities made up here (no bus), and
 * the polkit answer's mapping to bus errors. */
#include <errno.h>
#include <string.h>

#include "agent-registry.h"
#include "assert.h"
#include "polkit-check.h"

#define ALICE 1000
#define BOB 1001

static AgentRegistry *new_registry(void) {
        AgentRegistry *reg = NULL;

        ASSERT_EQ(agent_registry_new(NULL, &reg), 0);
        return reg;
}

static void test_one_agent_per_session(void) {
        AgentRegistry *reg = new_registry();
        const Agent *a;

        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/tray/agent", "3", ALICE), 0);
        /* The same registration again changes nothing. */
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/tray/agent", "3", ALICE), 0);
        ASSERT_EQ(agent_registry_count(reg), 1);
        /* Another client of the session, or another path, is refused. */
        ASSERT_EQ(agent_registry_register(reg, ":1.11", "/ctl/agent", "3", ALICE), -EEXIST);
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/tray/other", "3", ALICE), -EEXIST);
        /* Another session of the same user has its own. */
        ASSERT_EQ(agent_registry_register(reg, ":1.12", "/ctl/agent", "7", ALICE), 0);
        ASSERT_EQ(agent_registry_count(reg), 2);

        a = agent_registry_find(reg, ALICE, "3");
        ASSERT_TRUE(a);
        ASSERT_STREQ(a->owner, ":1.10");
        ASSERT_STREQ(a->path, "/tray/agent");
        ASSERT_STREQ(a->session, "3");
        ASSERT_EQ(a->uid, ALICE);
        ASSERT_STREQ(agent_registry_find(reg, ALICE, "7")->owner, ":1.12");
        /* A session without an agent of its own, and two candidates: none. */
        ASSERT_TRUE(!agent_registry_find(reg, ALICE, "9"));
        ASSERT_TRUE(!agent_registry_find(reg, ALICE, NULL));
        agent_registry_free(reg);
}

static void test_never_another_users_agent(void) {
        AgentRegistry *reg = new_registry();

        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/tray/agent", "3", ALICE), 0);
        ASSERT_EQ(agent_registry_register(reg, ":1.20", "/tray/agent", NULL, ALICE), 0);
        /* Bob in Alice's session (a forged or stale session id), in none,
         * or in his own: never Alice's agent. */
        ASSERT_TRUE(!agent_registry_find(reg, BOB, "3"));
        ASSERT_TRUE(!agent_registry_find(reg, BOB, NULL));
        ASSERT_TRUE(!agent_registry_find(reg, BOB, "4"));
        /* Bob may register in a session id Alice uses: they are apart. */
        ASSERT_EQ(agent_registry_register(reg, ":1.30", "/bob/agent", "3", BOB), 0);
        ASSERT_STREQ(agent_registry_find(reg, BOB, "3")->owner, ":1.30");
        ASSERT_STREQ(agent_registry_find(reg, ALICE, "3")->owner, ":1.10");
        agent_registry_free(reg);
}

static void test_unknown_sessions(void) {
        AgentRegistry *reg = new_registry();

        /* A private bus without logind: the uid's one agent. */
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/tray/agent", NULL, ALICE), 0);
        ASSERT_EQ(agent_registry_register(reg, ":1.11", "/ctl/agent", NULL, ALICE), -EEXIST);
        ASSERT_STREQ(agent_registry_find(reg, ALICE, NULL)->owner, ":1.10");
        /* A caller in a session with no agent of its own gets the sessionless one. */
        ASSERT_STREQ(agent_registry_find(reg, ALICE, "5")->owner, ":1.10");
        ASSERT_EQ(agent_registry_unregister(reg, ":1.10", "/tray/agent"), 0);

        /* A sessionless caller and a single agent in a session: that one. */
        ASSERT_EQ(agent_registry_register(reg, ":1.12", "/tray/agent", "5", ALICE), 0);
        ASSERT_STREQ(agent_registry_find(reg, ALICE, NULL)->owner, ":1.12");
        agent_registry_free(reg);
}

static void test_unregister_and_forget(void) {
        AgentRegistry *reg = new_registry();

        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/a", "3", ALICE), 0);
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/b", "4", ALICE), 0);
        ASSERT_EQ(agent_registry_register(reg, ":1.20", "/a", "5", BOB), 0);
        /* Only the owner may unregister, and only what it registered. */
        ASSERT_EQ(agent_registry_unregister(reg, ":1.20", "/b"), -ENOENT);
        ASSERT_EQ(agent_registry_unregister(reg, ":1.20", "/a"), 0);
        ASSERT_EQ(agent_registry_unregister(reg, ":1.20", "/a"), -ENOENT);
        ASSERT_EQ(agent_registry_forget_owner(reg, ":1.10"), 2);
        ASSERT_EQ(agent_registry_count(reg), 0);
        ASSERT_TRUE(!agent_registry_find(reg, ALICE, "3"));
        /* Its session is free again. */
        ASSERT_EQ(agent_registry_register(reg, ":1.30", "/a", "3", ALICE), 0);
        agent_registry_free(reg);
}

static void count_removed(AgentRegistry *reg, const Agent *agent, void *userdata) {
        unsigned *removed = userdata;

        /* Already out of the registry, still readable. */
        ASSERT_TRUE(agent_registry_find(reg, agent->uid, agent->session) != agent);
        ASSERT_TRUE(agent->owner[0] == ':');
        (*removed)++;
}

static void test_removed_callback(void) {
        AgentRegistry *reg = new_registry();
        unsigned removed = 0;

        agent_registry_set_removed_callback(reg, count_removed, &removed);
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/a", "3", ALICE), 0);
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/b", "4", ALICE), 0);
        ASSERT_EQ(agent_registry_register(reg, ":1.20", "/a", "5", BOB), 0);
        ASSERT_EQ(agent_registry_unregister(reg, ":1.20", "/a"), 0);
        ASSERT_EQ(removed, 1);
        ASSERT_EQ(agent_registry_unregister(reg, ":1.20", "/a"), -ENOENT);
        ASSERT_EQ(removed, 1);
        ASSERT_EQ(agent_registry_forget_owner(reg, ":1.10"), 2);
        ASSERT_EQ(removed, 3);
        /* Freeing the registry is no removal to announce. */
        ASSERT_EQ(agent_registry_register(reg, ":1.30", "/a", "3", ALICE), 0);
        agent_registry_free(reg);
        ASSERT_EQ(removed, 3);
}

static void test_invalid(void) {
        AgentRegistry *reg = new_registry();

        ASSERT_EQ(agent_registry_register(reg, "org.example.Name", "/a", "3", ALICE), -EINVAL);
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "not/a/path", "3", ALICE), -EINVAL);
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/a/", "3", ALICE), -EINVAL);
        ASSERT_EQ(agent_registry_register(reg, ":1.10", "/a", "", ALICE), -EINVAL);
        ASSERT_EQ(agent_registry_count(reg), 0);
        agent_registry_free(reg);
}

static void test_polkit_errors(void) {
        sd_bus_error error = SD_BUS_ERROR_NULL;

        ASSERT_EQ(polkit_check_result_to_bus_error(POLKIT_RESULT_ALLOWED, 0, POLKIT_ACTION_RENEW, &error),
                  0);
        ASSERT_TRUE(!sd_bus_error_is_set(&error));

        ASSERT_EQ(polkit_check_result_to_bus_error(POLKIT_RESULT_DENIED, 0, POLKIT_ACTION_RENEW, &error),
                  -EACCES);
        ASSERT_STREQ(error.name, BUS_ERROR_NOT_AUTHORIZED);
        ASSERT_STREQ(error.message, "You are not allowed to renew certificates on this computer: "
                                    "org.keyrenew.renew was refused. Ask an administrator.");
        sd_bus_error_free(&error);

        ASSERT_EQ(polkit_check_result_to_bus_error(POLKIT_RESULT_CHALLENGE, 0, POLKIT_ACTION_MANAGE, &error),
                  -EACCES);
        ASSERT_STREQ(error.name, BUS_ERROR_NOT_AUTHORIZED);
        ASSERT_TRUE(strstr(error.message, "Authentication is needed for org.keyrenew.manage"));
        sd_bus_error_free(&error);

        /* polkit unreachable: refused, saying why. */
        ASSERT_EQ(polkit_check_result_to_bus_error(POLKIT_RESULT_ERROR, -EHOSTDOWN, POLKIT_ACTION_RENEW,
                                                   &error),
                  -EACCES);
        ASSERT_STREQ(error.name, BUS_ERROR_NOT_AUTHORIZED);
        ASSERT_TRUE(strstr(error.message, "Could not ask polkit whether org.keyrenew.renew is allowed"));
        ASSERT_TRUE(strstr(error.message, strerror(EHOSTDOWN)));
        sd_bus_error_free(&error);

        ASSERT_EQ(polkit_check_result_to_bus_error(POLKIT_RESULT_DENIED, 0, "org.example.other", &error),
                  -EACCES);
        ASSERT_TRUE(strstr(error.message, "org.example.other was refused"));
        sd_bus_error_free(&error);

        ASSERT_STREQ(polkit_result_to_string(POLKIT_RESULT_CHALLENGE), "challenge");
}

static void never_called(PolkitCheck *check, PolkitResult result, int error, void *userdata) {
        abort();
}

static void test_polkit_start_refuses_missing_arguments(void) {
        PolkitCheck *check = NULL;

        ASSERT_EQ(polkit_check_start(NULL, NULL, POLKIT_ACTION_RENEW, never_called, NULL, &check), -EINVAL);
        ASSERT_TRUE(!check);
        ASSERT_TRUE(!polkit_check_cancel(NULL));
}

int main(void) {
        test_one_agent_per_session();
        test_never_another_users_agent();
        test_unknown_sessions();
        test_unregister_and_forget();
        test_removed_callback();
        test_invalid();
        test_polkit_errors();
        test_polkit_start_refuses_missing_arguments();
        return 0;
}
