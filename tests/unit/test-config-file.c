/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "assert.h"
#include "config-file.h"
#include "macro.h"

/* Parses text as the file "t.conf"; returns what config_parse() returned.
 * On success *ret holds the result, else *ret_error the message. */
static int parse_n(const char *text, size_t len, Config *ret, char **ret_error) {
        FILE *f = fmemopen((void *) text, len, "r");
        int r;

        ASSERT_TRUE(f);
        r = config_parse(f, "t.conf", ret, ret_error);
        fclose(f);
        return r;
}

static int parse(const char *text, Config *ret, char **ret_error) {
        return parse_n(text, strlen(text), ret, ret_error);
}

/* Checks that text parses. */
static void ok(const char *text, Config *ret) {
        char *error = NULL;

        if (parse(text, ret, &error) < 0) {
                fprintf(stderr, "unexpected error: %s\n", error);
                abort();
        }
        ASSERT_TRUE(!error);
}

/* Checks that text is refused with a message starting with prefix (the
 * file and line) and containing needle. */
static void bad(const char *text, const char *prefix, const char *needle) {
        _cleanup_free_ char *error = NULL;
        Config c = { .n_warn_days = 999 };

        ASSERT_EQ(parse(text, &c, &error), -EINVAL);
        ASSERT_TRUE(error);
        if (strncmp(error, prefix, strlen(prefix)) != 0 || !strstr(error, needle)) {
                fprintf(stderr, "message \"%s\" lacks \"%s\" or \"%s\"\n", error, prefix, needle);
                abort();
        }
        /* ret is written only on success. */
        ASSERT_EQ(c.n_warn_days, 999);
}

static void assert_defaults(const Config *c) {
        ASSERT_EQ(c->log_level, LOG_INFO);
        ASSERT_EQ(c->n_warn_days, 5);
        ASSERT_EQ(c->warn_days[0], 30);
        ASSERT_EQ(c->warn_days[1], 14);
        ASSERT_EQ(c->warn_days[2], 7);
        ASSERT_EQ(c->warn_days[3], 3);
        ASSERT_EQ(c->warn_days[4], 1);
        ASSERT_TRUE(!c->portal_url);
        ASSERT_TRUE(!c->portal_ca_bundle);
        ASSERT_EQ(c->portal_poll_interval_sec, 21600);
        ASSERT_TRUE(!c->mgm_key_dir);
}

static void test_defaults(void) {
        Config c;

        config_init(&c);
        assert_defaults(&c);
        config_done(&c);

        ok("", &c);
        assert_defaults(&c);
        config_done(&c);

        ok("# nothing but comments\n; and this\n\n   \n\t# indented\n[Daemon]\n[Expiry]\n[Portal]\n", &c);
        assert_defaults(&c);
        config_done(&c);
}

static void test_every_key(void) {
        Config c;

        ok("[Daemon]\n"
           "LogLevel=debug\n"
           "[Expiry]\n"
           "WarnDays=60,30,1\n"
           "[Portal]\n"
           "Url=https://portal.example.com:8443/keyrenew?x=1#top\n"
           "PollIntervalSec=600\n",
           &c);
        ASSERT_EQ(c.log_level, LOG_DEBUG);
        ASSERT_EQ(c.n_warn_days, 3);
        ASSERT_EQ(c.warn_days[0], 60);
        ASSERT_EQ(c.warn_days[1], 30);
        ASSERT_EQ(c.warn_days[2], 1);
        ASSERT_STREQ(c.portal_url, "https://portal.example.com:8443/keyrenew?x=1#top");
        ASSERT_EQ(c.portal_poll_interval_sec, 600);
        config_done(&c);
        assert_defaults(&c);
}

static void test_log_level(void) {
        static const char *const names[] = { "emerg",   "alert",  "crit", "err",
                                             "warning", "notice", "info", "debug" };
        char text[64];
        Config c;

        for (int i = 0; i < (int) ELEMENTSOF(names); i++) {
                snprintf(text, sizeof text, "[Daemon]\nLogLevel=%s\n", names[i]);
                ok(text, &c);
                ASSERT_EQ(c.log_level, i);
                config_done(&c);
        }
        ok("[Daemon]\nLogLevel=4\n", &c);
        ASSERT_EQ(c.log_level, LOG_WARNING);
        config_done(&c);
        bad("[Daemon]\nLogLevel=loud\n", "t.conf:2: LogLevel=loud: ", "emerg, alert, crit");
        bad("[Daemon]\nLogLevel=8\n", "t.conf:2: LogLevel=8: ", "debug");
        bad("[Daemon]\nLogLevel=Debug\n", "t.conf:2: ", "not a log level");
        bad("[Daemon]\nLogLevel=info debug\n", "t.conf:2: ", "not a log level");
}

static void test_warn_days(void) {
        Config c;

        ok("[Expiry]\nWarnDays=7\n", &c);
        ASSERT_EQ(c.n_warn_days, 1);
        ASSERT_EQ(c.warn_days[0], 7);
        config_done(&c);

        ok("[Expiry]\nWarnDays = 90 , 30,\t7 \n", &c);
        ASSERT_EQ(c.n_warn_days, 3);
        ASSERT_EQ(c.warn_days[0], 90);
        ASSERT_EQ(c.warn_days[2], 7);
        config_done(&c);

        ok("[Expiry]\nWarnDays=3650,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2\n", &c);
        ASSERT_EQ(c.n_warn_days, 16);
        ASSERT_EQ(c.warn_days[0], 3650);
        ASSERT_EQ(c.warn_days[15], 2);
        config_done(&c);

        bad("[Expiry]\nWarnDays=17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1\n", "t.conf:2: ", "at most 16");
        bad("[Expiry]\nWarnDays=7,14,30\n", "t.conf:2: WarnDays=7,14,30: ", "largest to the smallest");
        bad("[Expiry]\nWarnDays=30,7,7\n", "t.conf:2: ", "7 is given twice");
        bad("[Expiry]\nWarnDays=30,0\n", "t.conf:2: ", "'0' is not a number of days");
        bad("[Expiry]\nWarnDays=30,-1\n", "t.conf:2: ", "'-1' is not a number of days");
        bad("[Expiry]\nWarnDays=30,+7\n", "t.conf:2: ", "'+7'");
        bad("[Expiry]\nWarnDays=30,,7\n", "t.conf:2: ", "'' is not a number of days");
        bad("[Expiry]\nWarnDays=30,7,\n", "t.conf:2: ", "'' is not");
        bad("[Expiry]\nWarnDays=30;7\n", "t.conf:2: ", "'30;7'");
        bad("[Expiry]\nWarnDays=7.5\n", "t.conf:2: ", "'7.5'");
        bad("[Expiry]\nWarnDays=30 7\n", "t.conf:2: ", "'30 7'");
        bad("[Expiry]\nWarnDays=3651\n", "t.conf:2: ", "3651 is too large");
        bad("[Expiry]\nWarnDays=99999999999999999999\n", "t.conf:2: ", "too large");
}

static void test_url(void) {
        static const char *const good[] = {
                "https://portal.example.com", "HTTPS://Portal.Example.COM/path",
                "https://192.0.2.1:443/",     "https://[2001:db8::1]:8443/x",
                "https://[2001:db8::1]/x",    "http://127.0.0.1:43050/status",
                "http://localhost/",          "http://LOCALHOST:1",
                "http://[::1]:8080",
        };
        char text[256];
        Config c;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                snprintf(text, sizeof text, "[Portal]\nUrl=%s\n", good[i]);
                ok(text, &c);
                ASSERT_STREQ(c.portal_url, good[i]);
                config_done(&c);
        }
        bad("[Portal]\nUrl=ftp://portal.example.com\n",
            "t.conf:2: Url=ftp://portal.example.com: ", "https://");
        bad("[Portal]\nUrl=portal.example.com\n", "t.conf:2: ", "not an https:// URL");
        bad("[Portal]\nUrl=http://portal.example.com\n", "t.conf:2: ", "only allowed to localhost");
        bad("[Portal]\nUrl=http://127.0.0.2/\n", "t.conf:2: ", "only allowed to localhost");
        bad("[Portal]\nUrl=http://localhost.example.com/\n", "t.conf:2: ", "only allowed to localhost");
        bad("[Portal]\nUrl=https://\n", "t.conf:2: ", "no valid host");
        bad("[Portal]\nUrl=https:///path\n", "t.conf:2: ", "no valid host");
        bad("[Portal]\nUrl=https://:443/\n", "t.conf:2: ", "no valid host");
        bad("[Portal]\nUrl=https://host_name/\n", "t.conf:2: ", "no valid host");
        bad("[Portal]\nUrl=https://user:pw@portal.example.com/\n", "t.conf:2: ", "user name or password");
        bad("[Portal]\nUrl=https://portal.example.com:0/\n", "t.conf:2: ", "port");
        bad("[Portal]\nUrl=https://portal.example.com:65536/\n", "t.conf:2: ", "1 to 65535");
        bad("[Portal]\nUrl=https://portal.example.com:/\n", "t.conf:2: ", "port");
        bad("[Portal]\nUrl=https://portal.example.com:http/\n", "t.conf:2: ", "port");
        bad("[Portal]\nUrl=https://portal.example.com/a b\n", "t.conf:2: ", "space");
        bad("[Portal]\nUrl=https://portal.example.com/\x01\n", "t.conf:2: ", "control character");
}

static void test_ca_bundle(void) {
        char dir[] = "/tmp/test-config-XXXXXX", path[64], text[128];
        Config c;
        FILE *f;

        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/ca.pem", dir);
        f = fopen(path, "w");
        ASSERT_TRUE(f);
        fclose(f);

        snprintf(text, sizeof text, "[Portal]\nCABundle=%s\n", path);
        ok(text, &c);
        ASSERT_STREQ(c.portal_ca_bundle, path);
        ASSERT_TRUE(c.portal_cmp_trusted == NULL);
        config_done(&c);

        /* The CMP signer's CAs: the same kind of file, a key of its own. */
        snprintf(text, sizeof text, "[Portal]\nCmpTrustedCA=%s\n", path);
        ok(text, &c);
        ASSERT_STREQ(c.portal_cmp_trusted, path);
        ASSERT_TRUE(c.portal_ca_bundle == NULL);
        config_done(&c);
        bad("[Portal]\nCmpTrustedCA=cmp.pem\n", "t.conf:2: CmpTrustedCA=cmp.pem: ", "absolute path");
        bad("[Renewal]\nManagementKeyDirectory=keys\n",
            "t.conf:2: ManagementKeyDirectory=keys: ", "absolute path");
        ok("[Renewal]\nManagementKeyDirectory=/srv/keys\n", &c);
        ASSERT_STREQ(c.mgm_key_dir, "/srv/keys");
        config_done(&c);

        bad("[Portal]\nCABundle=ca.pem\n", "t.conf:2: CABundle=ca.pem: ", "absolute path");
        bad("[Portal]\nCABundle=/nonexistent/ca.pem\n", "t.conf:2: ", "No such file or directory");
        snprintf(text, sizeof text, "[Portal]\nCABundle=%s\n", dir);
        bad(text, "t.conf:2: ", "not a regular file");

        ASSERT_EQ(unlink(path), 0);
        ASSERT_EQ(rmdir(dir), 0);
}

static void test_poll_interval(void) {
        Config c;

        ok("[Portal]\nPollIntervalSec=1\n", &c);
        ASSERT_EQ(c.portal_poll_interval_sec, 1);
        config_done(&c);
        ok("[Portal]\nPollIntervalSec=604800\n", &c);
        ASSERT_EQ(c.portal_poll_interval_sec, 604800);
        config_done(&c);
        bad("[Portal]\nPollIntervalSec=0\n", "t.conf:2: PollIntervalSec=0: ", "from 1 to 604800");
        bad("[Portal]\nPollIntervalSec=604801\n", "t.conf:2: ", "from 1 to 604800");
        bad("[Portal]\nPollIntervalSec=1h\n", "t.conf:2: ", "number of seconds");
        bad("[Portal]\nPollIntervalSec=-5\n", "t.conf:2: ", "number of seconds");
        bad("[Portal]\nPollIntervalSec=4294967297\n", "t.conf:2: ", "number of seconds");
}

static void test_empty_value_is_default(void) {
        Config c;

        ok("[Daemon]\nLogLevel=\n[Expiry]\nWarnDays=\n[Portal]\nUrl=\nCABundle=\nPollIntervalSec=  \n", &c);
        assert_defaults(&c);
        config_done(&c);
}

static void test_structure(void) {
        bad("LogLevel=debug\n", "t.conf:1: ", "before any section header");
        bad("[Daemon]\nLoglevel=debug\n",
            "t.conf:2: ", "unknown key Loglevel in [Daemon]; the keys there are LogLevel");
        bad("[Portal]\nURL=x\n",
            "t.conf:2: ", "the keys there are Url, CABundle, CmpTrustedCA, PollIntervalSec");
        bad("[Expiry]\nLogLevel=debug\n", "t.conf:2: ", "unknown key LogLevel in [Expiry]");
        bad("[Daemon]\n[Foo]\nLogLevel=debug\n",
            "t.conf:2: ", "unknown section [Foo]; the sections are [Daemon], [Expiry], [Portal], [Renewal]");
        bad("[daemon]\n", "t.conf:1: ", "unknown section [daemon]");
        bad("[Daemon\n", "t.conf:1: ", "section header");
        bad("[Daemon] # comment\n", "t.conf:1: ", "nothing after the ']'");
        bad("[Daemon]\nLogLevel debug\n", "t.conf:2: ", "Key=value");
        bad("[Daemon]\n=debug\n", "t.conf:2: ", "key name is missing");
        bad("[Daemon]\nLogLevel=debug # trailing comments are not comments\n",
            "t.conf:2: ", "not a log level");
}

static void test_duplicates(void) {
        Config c;

        bad("[Daemon]\nLogLevel=debug\n\n[Expiry]\nWarnDays=1\n[Daemon]\nLogLevel=info\n",
            "t.conf:7: ", "LogLevel is already set on line 2");
        bad("[Portal]\nUrl=\nUrl=https://a.example\n", "t.conf:3: ", "already set on line 2");
        /* A section may come back for other keys. */
        ok("[Portal]\nUrl=https://a.example\n[Daemon]\nLogLevel=err\n[Portal]\nPollIntervalSec=5\n", &c);
        ASSERT_STREQ(c.portal_url, "https://a.example");
        ASSERT_EQ(c.portal_poll_interval_sec, 5);
        config_done(&c);
}

static void test_whitespace_and_line_ends(void) {
        Config c;

        ok("  [ Daemon ]  \r\n\tLogLevel\t=\tnotice\t\r\n", &c);
        ASSERT_EQ(c.log_level, LOG_NOTICE);
        config_done(&c);

        /* No line break at the end of the file. */
        ok("[Portal]\r\nPollIntervalSec=42", &c);
        ASSERT_EQ(c.portal_poll_interval_sec, 42);
        config_done(&c);

        /* A byte order mark from a Windows editor. */
        ok("\xEF\xBB\xBF[Daemon]\r\nLogLevel=err\r\n", &c);
        ASSERT_EQ(c.log_level, LOG_ERR);
        config_done(&c);

        /* Only on the first line. */
        bad("[Daemon]\n\xEF\xBB\xBFLogLevel=err\n", "t.conf:2: ", "unknown key");

        /* Line numbers count CRLF lines and comments. */
        bad("# one\r\n\r\n[Daemon]\r\n; four\r\nLogLevel=x\r\n", "t.conf:5: LogLevel=x: ", "log level");
}

static void test_long_line(void) {
        size_t n = CONFIG_LINE_MAX + 64;
        _cleanup_free_ char *text = malloc(n + 32), *error = NULL;
        Config c;
        int len;

        ASSERT_TRUE(text);
        /* Exactly CONFIG_LINE_MAX bytes is fine: a comment... */
        len = snprintf(text, n, "[Daemon]\n#%0*d\nLogLevel=debug\n", CONFIG_LINE_MAX - 1, 0);
        ok(text, &c);
        ASSERT_EQ(c.log_level, LOG_DEBUG);
        config_done(&c);
        /* ...one more is not, even with CRLF. */
        len = snprintf(text, n + 32, "[Daemon]\n#%0*d\r\nLogLevel=debug\n", CONFIG_LINE_MAX, 0);
        ASSERT_EQ(parse_n(text, (size_t) len, &c, &error), -EINVAL);
        ASSERT_TRUE(strstr(error, "t.conf:2: ") == error);
        ASSERT_TRUE(strstr(error, "longer than 4096 bytes"));
}

static void test_nul_byte(void) {
        static const char text[] = "[Daemon]\nLogLevel=de\0bug\n";
        _cleanup_free_ char *error = NULL;
        Config c;

        ASSERT_EQ(parse_n(text, sizeof text - 1, &c, &error), -EINVAL);
        ASSERT_TRUE(strstr(error, "t.conf:2: ") == error);
        ASSERT_TRUE(strstr(error, "NUL byte"));
}

static void test_load(void) {
        char dir[] = "/tmp/test-config-XXXXXX", path[64];
        _cleanup_free_ char *error = NULL;
        Config c;
        FILE *f;

        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/keyrenewd.conf", dir);

        /* A missing file: the defaults, unless it had to be there. */
        c.n_warn_days = 999;
        ASSERT_EQ(config_load(path, false, &c, &error), 0);
        assert_defaults(&c);
        config_done(&c);
        ASSERT_EQ(config_load(path, true, &c, &error), -ENOENT);
        ASSERT_TRUE(strstr(error, path));
        ASSERT_TRUE(strstr(error, "No such file"));
        free(TAKE_PTR(error));

        f = fopen(path, "w");
        ASSERT_TRUE(f);
        fputs("[Expiry]\nWarnDays=10,5\n[Portal]\nUrl=bad\n", f);
        fclose(f);
        ASSERT_EQ(config_load(path, false, &c, &error), -EINVAL);
        ASSERT_TRUE(strncmp(error, path, strlen(path)) == 0);
        ASSERT_TRUE(strstr(error, ":4: Url=bad: "));
        free(TAKE_PTR(error));

        /* A directory is not a file. */
        ASSERT_EQ(config_load(dir, true, &c, &error), -EISDIR);
        ASSERT_TRUE(strstr(error, dir));
        free(TAKE_PTR(error));

        ASSERT_EQ(unlink(path), 0);
        ASSERT_EQ(rmdir(dir), 0);
}

static void test_default_path(void) {
        const char *p = config_default_path();

        ASSERT_TRUE(strncmp(config_default_mgm_key_dir(), p, strlen(p) - strlen("keyrenewd.conf")) == 0);

        ASSERT_TRUE(p[0] == '/');
        ASSERT_TRUE(strlen(p) > strlen("/keyrenew/keyrenewd.conf"));
        ASSERT_STREQ(p + strlen(p) - strlen("/keyrenew/keyrenewd.conf"), "/keyrenew/keyrenewd.conf");
}

/* The example file that ships (daemon/keyrenewd.conf) shows every key with
 * its default, commented out: it parses to the defaults as it is and with
 * every key line uncommented. */
static const char *example_path;

static void test_example(void) {
        _cleanup_free_ char *error = NULL, *text = NULL, *uncommented = NULL;
        size_t n, o = 0, keys = 0;
        FILE *f;
        Config c;

        ASSERT_TRUE(example_path);
        ASSERT_EQ(config_load(example_path, true, &c, &error), 0);
        assert_defaults(&c);
        config_done(&c);

        f = fopen(example_path, "r");
        ASSERT_TRUE(f);
        text = malloc(65536);
        uncommented = malloc(65536);
        ASSERT_TRUE(text && uncommented);
        n = fread(text, 1, 65535, f);
        fclose(f);
        text[n] = '\0';
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                /* "#Key=value": a key with its default. */
                if (line[0] == '#' && line[1] >= 'A' && line[1] <= 'Z' && strchr(line, '=')) {
                        line++;
                        keys++;
                }
                o += (size_t) snprintf(uncommented + o, 65536 - o, "%s\n", line);
        }
        ASSERT_EQ(keys, 7);
        ok(uncommented, &c);
        assert_defaults(&c);
        config_done(&c);
}

int main(int argc, char **argv) {
        example_path = argc > 1 ? argv[1] : NULL;
        RUN(test_defaults);
        RUN(test_every_key);
        RUN(test_log_level);
        RUN(test_warn_days);
        RUN(test_url);
        RUN(test_ca_bundle);
        RUN(test_poll_interval);
        RUN(test_empty_value_is_default);
        RUN(test_structure);
        RUN(test_duplicates);
        RUN(test_whitespace_and_line_ends);
        RUN(test_long_line);
        RUN(test_nul_byte);
        RUN(test_load);
        RUN(test_default_path);
        RUN(test_example);
        return 0;
}
