/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "config-file.h"
#include "daemon.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "options.h"

/* --state-dir, else the first of systemd's StateDirectory= folders. */
static char *state_dir(const Options *o) {
        const char *env = getenv("STATE_DIRECTORY");

        if (o->state_dir)
                return strdup(o->state_dir);
        if (env && env[0])
                return strndup(env, strcspn(env, ":"));
        return NULL;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *error = NULL, *state = NULL;
        CliAction action;
        Options o;
        Config c;
        int r;

        i18n_init();
        if (options_parse(argc, argv, &o, &action) < 0)
                return 2;
        if (action == CLI_EXIT)
                return EXIT_SUCCESS;
        log_setup("keyrenewd", o.log_target);

        /* The default file may be missing (then the defaults hold); a file
         * named on the command line must be there. */
        r = config_load(o.config_path ? o.config_path : config_default_path(), o.config_path != NULL, &c,
                        &error);
        if (r < 0) {
                log_error("%s", error);
                return EXIT_FAILURE;
        }
        log_set_max_level(o.log_level >= 0 ? o.log_level : c.log_level);

        /* A client that goes away mid-write must not take the daemon along. */
        (void) signal(SIGPIPE, SIG_IGN);
        state = state_dir(&o);
        r = daemon_run(o.bus,
                       &(ManagerSettings){ .warn_days = c.warn_days,
                                           .n_warn_days = c.n_warn_days,
                                           .state_dir = state,
                                           .portal_url = c.portal_url,
                                           .portal_ca_bundle = c.portal_ca_bundle,
                                           .portal_cmp_trusted = c.portal_cmp_trusted ?: c.portal_ca_bundle,
                                           .portal_poll_interval_sec = c.portal_poll_interval_sec,
                                           .mgm_key_dir = c.mgm_key_dir ?: config_default_mgm_key_dir() });
        config_done(&c);
        return r;
}
