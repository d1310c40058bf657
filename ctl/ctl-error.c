/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "i18n.h"
#include "macro.h"

typedef struct ErrorWords {
        const char *name;
        const char *text;
        int status;
} ErrorWords;

/* Every error keyrenewd documents (dbus/org.keyrenew.KeyRenew1.xml) and
 * the bus's own that a user meets: what happened and what to do next. */
static const ErrorWords error_words[] = {
        { CTL_ERROR_PREFIX "NoSuchToken",
          N_("keyrenewd knows no key with this serial. Run 'keyrenewctl list' to see the keys it knows."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "TokenAbsent",
          N_("The key is not plugged in (or was pulled out). Plug it in and try again."), CTL_EXIT_ABSENT },
        { CTL_ERROR_PREFIX "CardError",
          N_("The key could not be read. Pull it out, plug it in again and retry; if it keeps failing, see "
             "'journalctl -u keyrenewd'."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "NotAuthorized",
          N_("You may not renew certificates here: polkit refused (renewing needs an active local session). "
             "Run keyrenewctl in your desktop session, or ask an administrator."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "NoSuchCertificate",
          N_("keyrenewd has no such certificate (the key may have been read again since). Run 'keyrenewctl "
             "list' and try again."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "NoRenewal",
          N_("The portal has no approved renewal for this certificate. Pay for or apply for the renewal on "
             "the portal page first (see 'keyrenewctl status'); once it is approved, run this again."),
          CTL_EXIT_NOTHING },
        { CTL_ERROR_PREFIX "Busy",
          N_("A renewal of this key is already under way (perhaps started from the tray or another "
             "terminal). Wait for it to finish; 'keyrenewctl status' shows how far it got."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "NoAgent",
          N_("keyrenewd found no PIN agent of your session although keyrenewctl registered one. This is a "
             "bug: please report it, with the output of 'journalctl -u keyrenewd'."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_AGENT_EXISTS,
          N_("Another program of your session (probably keyrenew-tray) is the PIN agent already: it asks "
             "for the PIN."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "NoSuchAgent",
          N_("keyrenewd had forgotten keyrenewctl's PIN agent (was it restarted?)."), CTL_EXIT_FAILED },
        { CTL_ERROR_CONFIRMATION_REQUIRED,
          N_("This renewal replaces a key that decrypts: data encrypted to the old key can no longer be "
             "decrypted once it is gone. To go ahead anyway, run again with --accept-key-loss."),
          CTL_EXIT_CONFIRM },
        { CTL_ERROR_CANCELLED,
          N_("The renewal was cancelled. Run 'keyrenewctl renew' again when you are ready; nothing is "
             "lost."),
          CTL_EXIT_CANCELLED },
        { CTL_ERROR_PREFIX "WrongPin",
          N_("The PIN was wrong. keyrenewd tries a PIN only once: check it and run 'keyrenewctl renew' "
             "again. When no tries are left, the PIN is blocked."),
          CTL_EXIT_PIN },
        { CTL_ERROR_PREFIX "PinBlocked",
          N_("The key's PIN is blocked: no tries are left. Unblock it with the PUK (for example "
             "'yubico-piv-tool -a unblock-pin'), or ask your CA for help; then run this again."),
          CTL_EXIT_PIN },
        { CTL_ERROR_PREFIX "ManagementKey",
          N_("keyrenewd does not know this key's management key, so it cannot write to the card. Protect "
             "the management key with the PIN ('ykman piv access change-management-key --protect'), or "
             "ask your administrator."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "NotSupported",
          N_("This key cannot do what the renewal order needs (a key type or size it lacks). Ask your CA."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "Interrupted",
          N_("The renewal was interrupted: the key was pulled out or keyrenewd stopped. Nothing is lost: "
             "plug the key in again and the renewal resumes where it stopped (or run 'keyrenewctl renew' "
             "again)."),
          CTL_EXIT_ABSENT },
        { CTL_ERROR_PREFIX "PortalError",
          N_("The renewal portal refused or could not be reached. Try again later: the renewal resumes "
             "where it stopped."),
          CTL_EXIT_FAILED },
        { CTL_ERROR_PREFIX "NotConfigured",
          N_("keyrenewd has no renewal portal (or no CMP trust anchors) configured. An administrator sets "
             "them in /etc/keyrenew/keyrenewd.conf."),
          CTL_EXIT_FAILED },
        { SD_BUS_ERROR_ACCESS_DENIED,
          N_("The bus policy does not let you talk to keyrenewd. Check that keyrenew's D-Bus policy file is "
             "installed."),
          CTL_EXIT_FAILED },
        { SD_BUS_ERROR_NO_REPLY, N_("keyrenewd did not answer in time. See 'journalctl -u keyrenewd'."),
          CTL_EXIT_FAILED },
        { SD_BUS_ERROR_TIMEOUT, N_("keyrenewd did not answer in time. See 'journalctl -u keyrenewd'."),
          CTL_EXIT_FAILED },
        { SD_BUS_ERROR_UNKNOWN_METHOD,
          N_("This keyrenewd does not offer that call: it is older than keyrenewctl. Update both "
             "together."),
          CTL_EXIT_FAILED },
};

static const ErrorWords *find_words(const sd_bus_error *error) {
        for (size_t i = 0; i < ELEMENTSOF(error_words); i++)
                if (sd_bus_error_has_name(error, error_words[i].name))
                        return &error_words[i];
        return NULL;
}

bool ctl_bus_error_is_daemon_missing(const sd_bus_error *error) {
        return sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      "org.freedesktop.systemd1.NoSuchUnit");
}

const char *ctl_bus_error_text(const sd_bus_error *error) {
        const ErrorWords *w = find_words(error);

        return w ? _(w->text) : NULL;
}

int ctl_bus_error_status(const sd_bus_error *error) {
        const ErrorWords *w = find_words(error);

        if (ctl_bus_error_is_daemon_missing(error))
                return CTL_EXIT_NO_DAEMON;
        return w ? w->status : CTL_EXIT_FAILED;
}

static bool is_keyrenew_error(const sd_bus_error *error) {
        return error->name && strncmp(error->name, CTL_ERROR_PREFIX, strlen(CTL_ERROR_PREFIX)) == 0;
}

/* keyrenewd's own message says what only it knows (the PIN tries left, the
 * portal's answer); ours says what to do. The bus's errors have only ours. */
static void print_bus_error(const sd_bus_error *error) {
        const char *text = ctl_bus_error_text(error);
        bool has_message = error->message && *error->message;

        if (has_message && (is_keyrenew_error(error) || !text))
                fprintf(stderr, "keyrenewd: %s\n", error->message);
        if (text)
                fprintf(stderr, "%s\n", text);
        else if (!has_message)
                fprintf(stderr, "%s\n", _("keyrenewd reported an error without a message."));
}

int ctl_error_report(int r, const sd_bus_error *error) {
        if (error && ctl_bus_error_is_daemon_missing(error)) {
                fprintf(stderr, "%s\n",
                        _("keyrenewd is not running (org.keyrenew.KeyRenew1 is not on the system bus). "
                          "Start it "
                          "with: systemctl start keyrenewd"));
                return CTL_EXIT_NO_DAEMON;
        }
        if (error && sd_bus_error_is_set(error)) {
                print_bus_error(error);
                return ctl_bus_error_status(error);
        }
        if (r == -ECONNREFUSED || r == -ECONNRESET || r == -ENOTCONN || r == -ENOENT) {
                /* sd-bus connects lazily: a bus that is not there shows up
                 * at the first call. */
                fprintf(stderr, _("Cannot connect to the bus: %s. Is D-Bus running?\n"), strerror(-r));
                return CTL_EXIT_NO_DAEMON;
        }
        fprintf(stderr, _("Cannot read keyrenewd's answer: %s\n"), strerror(-r));
        return CTL_EXIT_FAILED;
}
