/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config-file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"

/* Parses value into c. On a bad value returns -EINVAL with *ret_why saying
 * what is wrong and what is allowed (translated, allocated). */
typedef int (*ConfigParser)(Config *c, const char *value, char **ret_why);

typedef struct ConfigKey {
        const char *section;
        const char *key;
        const char *default_value;
        ConfigParser parse;
} ConfigKey;

static int parse_log_level(Config *c, const char *value, char **ret_why);
static int parse_warn_days(Config *c, const char *value, char **ret_why);
static int parse_portal_url(Config *c, const char *value, char **ret_why);
static int parse_ca_bundle(Config *c, const char *value, char **ret_why);
static int parse_cmp_trusted(Config *c, const char *value, char **ret_why);
static int parse_poll_interval(Config *c, const char *value, char **ret_why);
static int parse_mgm_key_dir(Config *c, const char *value, char **ret_why);

static const ConfigKey config_keys[] = {
        { "Daemon", "LogLevel", "info", parse_log_level },
        { "Expiry", "WarnDays", "30,14,7,3,1", parse_warn_days },
        { "Portal", "Url", "", parse_portal_url },
        { "Portal", "CABundle", "", parse_ca_bundle },
        { "Portal", "CmpTrustedCA", "", parse_cmp_trusted },
        { "Portal", "PollIntervalSec", "21600", parse_poll_interval },
        { "Renewal", "ManagementKeyDirectory", "", parse_mgm_key_dir },
};

static const char *const config_sections[] = { "Daemon", "Expiry", "Portal", "Renewal" };

const char *config_default_mgm_key_dir(void) {
        return SYSCONFDIR "/keyrenew/management-keys";
}

const char *config_default_path(void) {
        return SYSCONFDIR "/keyrenew/keyrenewd.conf";
}

/* Sets *ret_why to a formatted message; returns -EINVAL, or -ENOMEM when
 * there is no memory for the message. */
_printf_(2, 3) static int why(char **ret_why, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(ret_why, format, ap);
        va_end(ap);
        if (r < 0) {
                *ret_why = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

/* Digits only (no sign, no spaces), at most max. */
static int parse_unsigned(const char *s, size_t len, unsigned max, unsigned *ret) {
        unsigned long v = 0;

        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (s[i] - '0');
                if (v > max)
                        return -ERANGE;
        }
        *ret = (unsigned) v;
        return 0;
}

static int parse_log_level(Config *c, const char *value, char **ret_why) {
        int level;

        if (log_level_from_string(value, &level) < 0)
                return why(ret_why,
                           _("not a log level; use one of emerg, alert, crit, err, warning, notice, "
                             "info, debug (or a number from 0 to 7)"));
        c->log_level = level;
        return 0;
}

static int parse_warn_days(Config *c, const char *value, char **ret_why) {
        unsigned days[CONFIG_WARN_DAYS_MAX];
        const char *p = value;
        size_t n = 0;

        for (;;) {
                size_t len = strcspn(p, ","), start = 0, end = len;
                unsigned d;
                int r;

                while (start < end && (p[start] == ' ' || p[start] == '\t'))
                        start++;
                while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\t'))
                        end--;
                if (n == CONFIG_WARN_DAYS_MAX)
                        return why(ret_why, _("more than %d entries; give at most %d"), CONFIG_WARN_DAYS_MAX,
                                   CONFIG_WARN_DAYS_MAX);
                r = parse_unsigned(p + start, end - start, CONFIG_WARN_DAYS_LIMIT, &d);
                if (r == -EINVAL || (r == 0 && d == 0))
                        return why(ret_why,
                                   _("'%.*s' is not a number of days; give whole numbers from 1 to %d "
                                     "separated by commas, e.g. 30,14,7,3,1"),
                                   (int) (end - start), p + start, CONFIG_WARN_DAYS_LIMIT);
                if (r < 0)
                        return why(ret_why, _("%.*s is too large; each entry must be from 1 to %d days"),
                                   (int) (end - start), p + start, CONFIG_WARN_DAYS_LIMIT);
                if (n > 0 && d == days[n - 1])
                        return why(ret_why, _("%u is given twice; give each number of days once"), d);
                if (n > 0 && d > days[n - 1])
                        return why(ret_why, _("the days must be sorted from the largest to the smallest, "
                                              "e.g. 30,14,7,3,1"));
                days[n++] = d;
                if (p[len] == '\0')
                        break;
                p += len + 1;
        }
        memcpy(c->warn_days, days, n * sizeof days[0]);
        c->n_warn_days = n;
        return 0;
}

/* Host names, IPv4 and bracketed IPv6 addresses: letters, digits and the
 * few punctuation marks they use. */
static bool host_is_valid(const char *host, size_t len) {
        bool bracketed = len >= 2 && host[0] == '[' && host[len - 1] == ']';

        if (bracketed) {
                host++;
                len -= 2;
        }
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++) {
                char ch = host[i];
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '-' || ch == '.' || (bracketed && ch == ':');
                if (!ok)
                        return false;
        }
        return true;
}

static bool host_is_loopback(const char *host, size_t len) {
        static const char *const names[] = { "localhost", "127.0.0.1", "[::1]" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (len == strlen(names[i]) && strncasecmp(host, names[i], len) == 0)
                        return true;
        return false;
}

static int parse_portal_url(Config *c, const char *value, char **ret_why) {
        const char *rest, *host, *colon;
        size_t authority_len, host_len;
        bool https;
        char *copy;

        if (value[0] == '\0') {
                free(c->portal_url);
                c->portal_url = NULL;
                return 0;
        }
        for (const char *p = value; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return why(ret_why,
                                   _("the URL contains a space or a control character; write spaces "
                                     "as %%20"));
        https = strncasecmp(value, "https://", 8) == 0;
        if (!https && strncasecmp(value, "http://", 7) != 0)
                return why(ret_why, _("not an https:// URL; give the portal's address, e.g. "
                                      "https://portal.example.com/keyrenew"));
        rest = value + (https ? 8 : 7);
        authority_len = strcspn(rest, "/?#");
        if (memchr(rest, '@', authority_len))
                return why(ret_why, _("the URL must not contain a user name or password"));

        /* The port follows the last ':' outside an IPv6 address's brackets. */
        host = rest;
        host_len = authority_len;
        colon = memrchr(rest, ':', authority_len);
        if (colon && !memchr(colon, ']', authority_len - (size_t) (colon - rest))) {
                unsigned port;

                host_len = (size_t) (colon - rest);
                if (parse_unsigned(colon + 1, authority_len - host_len - 1, 65535, &port) < 0 || port == 0)
                        return why(ret_why, _("the port must be a number from 1 to 65535"));
        }
        if (!host_is_valid(host, host_len))
                return why(ret_why, _("the URL has no valid host name"));
        if (!https && !host_is_loopback(host, host_len))
                return why(ret_why, _("plain http:// is only allowed to localhost or 127.0.0.1 (for tests); "
                                      "use https://"));

        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(c->portal_url);
        c->portal_url = copy;
        return 0;
}

/* A PEM file of CA certificates, or "" for none. */
static int parse_pem_path(char **where, const char *value, char **ret_why) {
        struct stat st;
        char *copy;

        if (value[0] == '\0') {
                free(*where);
                *where = NULL;
                return 0;
        }
        if (value[0] != '/')
                return why(ret_why, _("not an absolute path; give the full path of a PEM file of CA "
                                      "certificates, e.g. /etc/keyrenew/portal-ca.pem"));
        if (stat(value, &st) < 0 || access(value, R_OK) < 0)
                return why(ret_why, _("cannot read it (%s); give a readable PEM file of CA certificates"),
                           strerror(errno));
        if (!S_ISREG(st.st_mode))
                return why(ret_why, _("not a regular file; give a PEM file of CA certificates"));

        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*where);
        *where = copy;
        return 0;
}

static int parse_ca_bundle(Config *c, const char *value, char **ret_why) {
        return parse_pem_path(&c->portal_ca_bundle, value, ret_why);
}

static int parse_cmp_trusted(Config *c, const char *value, char **ret_why) {
        return parse_pem_path(&c->portal_cmp_trusted, value, ret_why);
}

static int parse_poll_interval(Config *c, const char *value, char **ret_why) {
        unsigned v;

        if (parse_unsigned(value, strlen(value), CONFIG_POLL_INTERVAL_MAX, &v) < 0 || v == 0)
                return why(ret_why, _("not a number of seconds from 1 to %d (one week)"),
                           CONFIG_POLL_INTERVAL_MAX);
        c->portal_poll_interval_sec = v;
        return 0;
}

/* Checked when a renewal needs it: the folder may come later, and its
 * files are the admin's business until then. */
static int parse_mgm_key_dir(Config *c, const char *value, char **ret_why) {
        char *copy;

        if (value[0] == '\0') {
                free(c->mgm_key_dir);
                c->mgm_key_dir = NULL;
                return 0;
        }
        if (value[0] != '/')
                return why(ret_why,
                           _("not an absolute path; give the folder of the management key files, e.g. "
                             "/etc/keyrenew/management-keys"));
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(c->mgm_key_dir);
        c->mgm_key_dir = copy;
        return 0;
}

void config_init(Config *c) {
        *c = (Config){};
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                _cleanup_free_ char *ignored = NULL;

                /* The defaults are valid and allocate nothing. */
                (void) config_keys[i].parse(c, config_keys[i].default_value, &ignored);
        }
}

void config_done(Config *c) {
        free(c->portal_url);
        free(c->portal_ca_bundle);
        free(c->portal_cmp_trusted);
        free(c->mgm_key_dir);
        config_init(c);
}

static char *strip(char *s) {
        size_t n;

        s += strspn(s, " \t");
        n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = '\0';
        return s;
}

/* The names of the sections ("[Daemon], [Expiry], ...") or, given a
 * section, of its keys, as a comma list for messages. */
static char *join_names(const char *section) {
        char buf[256] = "";
        size_t o = 0;

        for (size_t i = 0; section ? i < ELEMENTSOF(config_keys) : i < ELEMENTSOF(config_sections); i++) {
                if (section && strcmp(config_keys[i].section, section) != 0)
                        continue;
                if (section)
                        o += (size_t) snprintf(buf + o, sizeof buf - o, "%s%s", o > 0 ? ", " : "",
                                               config_keys[i].key);
                else
                        o += (size_t) snprintf(buf + o, sizeof buf - o, "%s[%s]", o > 0 ? ", " : "",
                                               config_sections[i]);
                if (o >= sizeof buf)
                        break;
        }
        return strdup(buf);
}

typedef struct ConfigParseState {
        const char *name;
        unsigned line;
        const char *section;
        unsigned seen[ELEMENTSOF(config_keys)];
} ConfigParseState;

_printf_(3, 4) static int fail(const ConfigParseState *s, char **ret_error, const char *format, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&what, format, ap);
        va_end(ap);
        if (r < 0 || asprintf(ret_error, "%s:%u: %s", s->name, s->line, what) < 0)
                return -ENOMEM;
        return -EINVAL;
}

static int parse_section(ConfigParseState *s, char *line, char **ret_error) {
        size_t n = strlen(line);
        _cleanup_free_ char *known = NULL;
        char *name;

        if (line[n - 1] != ']')
                return fail(s, ret_error, _("a section header must be [Name], with nothing after the ']'"));
        line[n - 1] = '\0';
        name = strip(line + 1);
        for (size_t i = 0; i < ELEMENTSOF(config_sections); i++)
                if (strcmp(name, config_sections[i]) == 0) {
                        s->section = config_sections[i];
                        return 0;
                }
        known = join_names(NULL);
        if (!known)
                return -ENOMEM;
        return fail(s, ret_error, _("unknown section [%s]; the sections are %s"), name, known);
}

static int parse_assignment(ConfigParseState *s, Config *c, char *line, char **ret_error) {
        _cleanup_free_ char *known = NULL, *reason = NULL;
        char *eq = strchr(line, '='), *key, *value;
        size_t i;
        int r;

        if (!eq)
                return fail(s, ret_error, _("expected a [Section] header, a Key=value line or a # comment"));
        *eq = '\0';
        key = strip(line);
        value = strip(eq + 1);
        if (key[0] == '\0')
                return fail(s, ret_error, _("a line starts with '=': the key name is missing"));
        if (!s->section) {
                known = join_names(NULL);
                if (!known)
                        return -ENOMEM;
                return fail(s, ret_error, _("%s= comes before any section header; put it under one of %s"),
                            key, known);
        }
        for (i = 0; i < ELEMENTSOF(config_keys); i++)
                if (strcmp(config_keys[i].section, s->section) == 0 && strcmp(config_keys[i].key, key) == 0)
                        break;
        if (i == ELEMENTSOF(config_keys)) {
                known = join_names(s->section);
                if (!known)
                        return -ENOMEM;
                return fail(s, ret_error, _("unknown key %s in [%s]; the keys there are %s"), key,
                            s->section, known);
        }
        if (s->seen[i] > 0)
                return fail(s, ret_error, _("%s is already set on line %u; give each key once"), key,
                            s->seen[i]);
        s->seen[i] = s->line;

        r = config_keys[i].parse(c, value[0] ? value : config_keys[i].default_value, &reason);
        if (r == -EINVAL)
                return fail(s, ret_error, "%s=%s: %s", key, value, reason);
        return r;
}

static int parse_line(ConfigParseState *s, Config *c, char *line, size_t len, char **ret_error) {
        if (strlen(line) != len)
                return fail(s, ret_error, _("the line contains a NUL byte; the file must be text"));
        if (len > 0 && line[len - 1] == '\n')
                line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
                line[--len] = '\0';
        if (len > CONFIG_LINE_MAX)
                return fail(s, ret_error, _("the line is longer than %d bytes"), CONFIG_LINE_MAX);
        /* Editors on Windows may start the file with a byte order mark. */
        if (s->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
                line += 3;
        line = strip(line);
        if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
                return 0;
        if (line[0] == '[')
                return parse_section(s, line, ret_error);
        return parse_assignment(s, c, line, ret_error);
}

int config_parse(FILE *f, const char *name, Config *ret, char **ret_error) {
        ConfigParseState s = { .name = name };
        _cleanup_free_ char *line = NULL, *error = NULL;
        size_t cap = 0;
        ssize_t n;
        Config c;
        int r = 0;

        config_init(&c);
        while ((n = getline(&line, &cap, f)) >= 0) {
                s.line++;
                r = parse_line(&s, &c, line, (size_t) n, &error);
                if (r < 0)
                        break;
        }
        if (r == 0 && ferror(f)) {
                r = negative_errno();
                if (asprintf(&error, _("cannot read %s: %s"), name, strerror(-r)) < 0)
                        error = NULL;
        }
        if (r < 0) {
                config_done(&c);
                if (!error && asprintf(&error, "%s: %s", name, strerror(-r)) < 0)
                        return -ENOMEM;
                *ret_error = TAKE_PTR(error);
                return r;
        }
        *ret = c;
        return 0;
}

int config_load(const char *path, bool must_exist, Config *ret, char **ret_error) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        int r;

        if (!f) {
                r = negative_errno();
                if (r == -ENOENT && !must_exist) {
                        config_init(ret);
                        return 0;
                }
                if (asprintf(ret_error, _("cannot open %s: %s"), path, strerror(-r)) < 0)
                        return -ENOMEM;
                return r;
        }
        return config_parse(f, path, ret, ret_error);
}
