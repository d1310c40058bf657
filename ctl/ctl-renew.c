/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-renew.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "config.h"
#include "ctl-agent.h"
#include "ctl-error.h"
#include "ctl-json.h"
#include "ctl-pick.h"
#include "ctl-prompt.h"
#include "ctl-status.h"
#include "i18n.h"

#define ROOT_PATH "/org/keyrenew/KeyRenew1"
#define MANAGER_IFACE "org.keyrenew.KeyRenew1.Manager"
#define TOKEN_IFACE "org.keyrenew.KeyRenew1.Token"

/* A renewal writes to the card and talks to the portal: a minute is
 * usual, a slow portal more. keyrenewd ends it itself long before. */
#define RENEW_TIMEOUT_USEC (10ULL * 60ULL * 1000000ULL)

/* Room for "yes", "no" and what a locale says instead. */
#define ANSWER_MAX_LEN 32

typedef struct Renewal {
        sd_bus *bus;
        sd_event *event;
        const CtlRenewOptions *options;
        const CtlCert *cert;
        char name[256]; /* "12345678/9a" */
        bool accept_key_loss;
        bool color; /* of stderr */
        CtlAgent *agent;
        sd_bus_slot *call;
        sd_bus_slot *cancel_call;
        sd_bus_slot *progress;
        sd_event_source *sigint, *sigterm;
        Prompt *question;
        bool cancelling;
        char *step; /* the last step shown */
        CtlNumber progress_value;
        sigset_t saved_mask;
        bool mask_saved;
        int status; /* the exit status once it is over, -1 before */
} Renewal;

static void renewal_done(Renewal *rn) {
        rn->question = prompt_free(rn->question);
        /* The agent unregisters with a call of its own: before the bus
         * leaves the loop. */
        rn->agent = ctl_agent_free(rn->agent);
        sd_bus_slot_unref(rn->call);
        sd_bus_slot_unref(rn->cancel_call);
        sd_bus_slot_unref(rn->progress);
        sd_event_source_disable_unref(rn->sigint);
        sd_event_source_disable_unref(rn->sigterm);
        if (rn->bus && rn->event)
                (void) sd_bus_detach_event(rn->bus);
        sd_event_unref(rn->event);
        free(rn->step);
        if (rn->mask_saved)
                (void) sigprocmask(SIG_SETMASK, &rn->saved_mask, NULL);
}

static void print_candidates(const CtlManager *m, CtlCert **list) {
        for (CtlCert **c = list; *c; c++) {
                char name[256], subject[256];

                ctl_cert_name(m, *c, name, sizeof(name));
                ctl_subject_name(subject, sizeof(subject), (*c)->subject);
                fprintf(stderr, "  keyrenewctl renew %s    (%s)\n", name, subject);
        }
}

/* The certificate to renew, or why there is none: returns -1 to go on, or
 * the exit status. */
static int choose(const CtlManager *m, const char *target, const CtlCert **ret) {
        _cleanup_free_ CtlCert **list = NULL;
        int n = ctl_pick(m, target, &list);

        if (n == -ENODEV) {
                fprintf(stderr,
                        _("keyrenewd knows no key with the serial %.*s. Run 'keyrenewctl list' to see the "
                          "keys "
                          "it knows.\n"),
                        (int) strcspn(target, "/"), target);
                return CTL_EXIT_FAILED;
        }
        if (n == -ENOENT) {
                fprintf(stderr,
                        _("keyrenewd knows no certificate %s. Run 'keyrenewctl list' to see the "
                          "certificates: "
                          "KEY/SLOT names one.\n"),
                        target);
                return CTL_EXIT_FAILED;
        }
        if (n < 0) {
                fprintf(stderr, _("Cannot look for the certificate: %s\n"), strerror(-n));
                return CTL_EXIT_FAILED;
        }
        if (n == 0) {
                if (target)
                        fprintf(stderr, _("No certificate on key %s has an approved renewal.\n"), target);
                else
                        fprintf(stderr, "%s\n", _("No certificate has an approved renewal."));
                fprintf(stderr, "%s\n",
                        _("Pay for or apply for the renewal on the CA's portal first: 'keyrenewctl status' "
                          "shows each certificate's renewal and its portal page."));
                return CTL_EXIT_NOTHING;
        }
        if (n > 1) {
                fprintf(stderr, "%s\n", _("Several certificates have an approved renewal; say which one:"));
                print_candidates(m, list);
                return CTL_EXIT_USAGE;
        }
        *ret = list[0];
        return -1;
}

/* Not sd_event_exit(): that closes the bus (sd-bus's exit handler), and
 * the agent has yet to unregister. */
static void finish(Renewal *rn, int status) {
        rn->status = status;
}

static int print_result(Renewal *rn, sd_bus_message *reply) {
        _cleanup_(json_decrefp) json_t *result = NULL;
        char when[64], subject[256];
        json_t *v;
        int r;

        r = ctl_json_read_dict(reply, &result);
        if (r < 0)
                return r;
        if (rn->options->json) {
                if (json_object_set_new(result, "Certificate", json_string(rn->cert->path)) < 0)
                        return -ENOMEM;
                return ctl_json_dump(result, stdout);
        }
        ctl_subject_name(subject, sizeof(subject), rn->cert->subject);
        printf(_("Renewed %s (%s).\n"), rn->name, subject);
        v = json_object_get(result, "Serial");
        ctl_print_field(stdout, _("New serial"), json_is_string(v) ? json_string_value(v) : _("unknown"),
                        NULL);
        v = json_object_get(result, "NotAfter");
        ctl_format_time(when, sizeof(when), &(CtlNumber){ json_is_integer(v), json_integer_value(v) },
                        false);
        ctl_print_field(stdout, _("Valid until"), when, NULL);
        v = json_object_get(result, "Order");
        if (json_is_string(v))
                ctl_print_field(stdout, _("Order"), json_string_value(v), NULL);
        v = json_object_get(result, "Rekeyed");
        if (json_is_boolean(v))
                ctl_print_field(stdout, _("New key"),
                                json_is_true(v) ? _("yes, made on the card") : _("no, the same key"), NULL);
        if (json_is_true(json_object_get(result, "Resumed")))
                ctl_print_field(stdout, _("Resumed"),
                                _("yes: an interrupted renewal of this order was finished"), NULL);
        return ferror(stdout) ? -EIO : 0;
}

static int start_call(Renewal *rn);

static void on_answer(Prompt *p, int r, const char *line, void *userdata) {
        Renewal *rn = userdata;
        bool yes = r == 0 && rpmatch(line) == 1;

        rn->question = prompt_free(rn->question);
        if (!yes) {
                fprintf(stderr, "%s\n", _("Nothing was changed."));
                finish(rn, CTL_EXIT_CANCELLED);
                return;
        }
        rn->accept_key_loss = true;
        r = start_call(rn);
        if (r < 0)
                finish(rn, ctl_error_report(r, NULL));
}

/* ConfirmationRequired: the consequence in plain words, then the
 * question on a terminal, or the option to use. */
static void confirm(Renewal *rn, const sd_bus_error *error) {
        int r;

        if (error->message && *error->message)
                fprintf(stderr, "keyrenewd: %s\n", error->message);
        fprintf(stderr, "%s\n",
                _("This renewal replaces the key of a certificate that decrypts (for encryption). Whatever "
                  "was "
                  "encrypted to the old key (mail, files, sealed bids) can no longer be decrypted once the "
                  "old key is gone. Decrypt what you still need first."));
        if (rn->options->pin_stdin || !prompt_have_tty()) {
                fprintf(stderr, "%s\n",
                        _("Nothing was changed. To replace the key anyway, run again with "
                          "--accept-key-loss."));
                finish(rn, CTL_EXIT_CONFIRM);
                return;
        }
        r = prompt_start(rn->event, PROMPT_TTY, false, ANSWER_MAX_LEN,
                         _("Replace the key and lose what only the old one decrypts? [y/N] "), on_answer, rn,
                         &rn->question);
        if (r < 0) {
                fprintf(stderr, _("Cannot ask on the terminal: %s\n"), strerror(-r));
                finish(rn, CTL_EXIT_CONFIRM);
        }
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Renewal *rn = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        int r;

        rn->call = sd_bus_slot_unref(rn->call);
        if (!error) {
                r = print_result(rn, reply);
                if (r < 0)
                        fprintf(stderr, _("Cannot show the result: %s\n"), strerror(-r));
                finish(rn, r < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK);
        } else if (sd_bus_error_has_name(error, CTL_ERROR_CONFIRMATION_REQUIRED) && !rn->accept_key_loss)
                confirm(rn, error);
        else
                finish(rn, ctl_error_report(-EIO, error));
        return 0;
}

static int start_call(Renewal *rn) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = sd_bus_message_new_method_call(rn->bus, &call, KEYRENEW_BUS_NAME, ROOT_PATH, MANAGER_IFACE,
                                           "Renew");
        if (r >= 0)
                r = sd_bus_message_append(call, "o", rn->cert->path);
        /* An older keyrenewd refuses options it does not know: only what
         * the user said. */
        if (r >= 0 && rn->accept_key_loss)
                r = sd_bus_message_append(call, "a{sv}", 1, "AcceptKeyLoss", "b", 1);
        else if (r >= 0)
                r = sd_bus_message_append(call, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call_async(rn->bus, &rn->call, call, on_reply, rn, RENEW_TIMEOUT_USEC);
        return r;
}

/* One line per step, as the token reports it. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(json_decrefp) json_t *changed = NULL;
        Renewal *rn = userdata;
        const char *iface, *step;
        char line[256];
        json_t *progress;

        if (sd_bus_message_read(m, "s", &iface) < 0 || strcmp(iface, TOKEN_IFACE) != 0 ||
            ctl_json_read_dict(m, &changed) < 0)
                return 0;
        progress = json_object_get(changed, "Progress");
        if (json_is_integer(progress))
                rn->progress_value = (CtlNumber){ true, json_integer_value(progress) };
        step = json_string_value(json_object_get(changed, "RenewalStep"));
        if (!step || !*step || (rn->step && strcmp(rn->step, step) == 0))
                return 0;
        /* How a renewal ended is Renew's answer to say, with what to do. */
        if (strcmp(step, "failed") == 0 || strcmp(step, "cancelled") == 0 ||
            strcmp(step, "interrupted") == 0)
                return 0;
        free(rn->step);
        rn->step = strdup(step);
        ctl_format_step(line, sizeof(line), &rn->progress_value, step);
        if (rn->color && ctl_color_of(step, true))
                fprintf(stderr, "%s%s\x1b[0m\n", ctl_color_of(step, true), line);
        else
                fprintf(stderr, "%s\n", line);
        return 0;
}

static int on_cancel_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Renewal *rn = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);

        rn->cancel_call = sd_bus_slot_unref(rn->cancel_call);
        /* Renew's own answer ends the run; this one only says why the
         * cancel did not go through. */
        if (error)
                (void) ctl_error_report(-EIO, error);
        return 0;
}

/* Ctrl-C closes the prompt that is open; during the renewal it asks
 * keyrenewd to cancel (at its next step); once more, or SIGTERM, and
 * keyrenewctl stops waiting. */
static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Renewal *rn = userdata;
        int r;

        if (rn->agent && ctl_agent_interrupt(rn->agent))
                return 0;
        if (rn->question) {
                rn->question = prompt_abort(rn->question, _("Nothing was changed."));
                finish(rn, CTL_EXIT_CANCELLED);
                return 0;
        }
        if (rn->call && !rn->cancelling && si->ssi_signo == SIGINT) {
                r = sd_bus_call_method_async(rn->bus, &rn->cancel_call, KEYRENEW_BUS_NAME, ROOT_PATH,
                                             MANAGER_IFACE, "Cancel", on_cancel_reply, rn, "o",
                                             rn->cert->path);
                if (r >= 0) {
                        rn->cancelling = true;
                        fprintf(stderr, "%s\n",
                                _("Cancelling the renewal at its next step (Ctrl-C again: stop waiting)."));
                        return 0;
                }
        }
        fprintf(stderr, "%s\n",
                _("keyrenewctl stopped waiting. A renewal under way goes on in keyrenewd: 'keyrenewctl "
                  "status' "
                  "shows how far it got."));
        finish(rn, CTL_EXIT_CANCELLED);
        return 0;
}

static int setup_loop(Renewal *rn) {
        sigset_t mask;
        int r;

        r = sd_event_new(&rn->event);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(rn->bus, rn->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        /* sd-event takes signals through a signalfd: they must be blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, &rn->saved_mask) < 0)
                return -errno;
        rn->mask_saved = true;
        r = sd_event_add_signal(rn->event, &rn->sigint, SIGINT, on_signal, rn);
        if (r >= 0)
                r = sd_event_add_signal(rn->event, &rn->sigterm, SIGTERM, on_signal, rn);
        return r;
}

/* keyrenewctl as the session's PIN agent, or another one (the tray)
 * that already is: returns -1 to go on, or the exit status. */
static int setup_agent(Renewal *rn) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = ctl_agent_new(rn->bus, rn->event, rn->options->pin_stdin ? PROMPT_STDIN : PROMPT_TTY,
                          &rn->agent);
        if (r >= 0)
                r = ctl_agent_register(rn->agent, &error);
        if (r < 0 && sd_bus_error_has_name(&error, CTL_ERROR_AGENT_EXISTS)) {
                rn->agent = ctl_agent_free(rn->agent);
                fprintf(stderr, "%s\n", ctl_bus_error_text(&error));
                if (rn->options->pin_stdin) {
                        fprintf(stderr, "%s\n",
                                _("--pin-stdin needs keyrenewctl to be the PIN agent: quit the other one, "
                                  "or "
                                  "renew without --pin-stdin."));
                        return CTL_EXIT_FAILED;
                }
                return -1;
        }
        if (r < 0)
                return ctl_error_report(r, &error);
        if (!rn->options->pin_stdin && !prompt_have_tty()) {
                fprintf(stderr, "%s\n",
                        _("No terminal to ask for the PIN on: run 'keyrenewctl renew' on a terminal, or "
                          "give "
                          "the PIN on standard input with --pin-stdin."));
                return CTL_EXIT_USAGE;
        }
        return -1;
}

int ctl_renew(sd_bus *bus, const CtlManager *m, const CtlRenewOptions *o) {
        _cleanup_(renewal_done) Renewal rn = {
                .bus = bus,
                .options = o,
                .accept_key_loss = o->accept_key_loss,
                .color = ctl_use_color(STDERR_FILENO),
                .status = -1,
        };
        int status, r;

        status = choose(m, o->target, &rn.cert);
        if (status >= 0)
                return status;
        ctl_cert_name(m, rn.cert, rn.name, sizeof(rn.name));

        r = setup_loop(&rn);
        if (r < 0) {
                fprintf(stderr, _("Cannot set up the event loop: %s\n"), strerror(-r));
                return CTL_EXIT_FAILED;
        }
        status = setup_agent(&rn);
        if (status >= 0)
                return status;
        /* Before the call, so that no step is missed. */
        if (rn.cert->token)
                r = sd_bus_match_signal(bus, &rn.progress, KEYRENEW_BUS_NAME, rn.cert->token,
                                        "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                        on_properties_changed, &rn);
        if (r >= 0)
                r = start_call(&rn);
        while (r >= 0 && rn.status < 0)
                r = sd_event_run(rn.event, UINT64_MAX);
        if (r < 0)
                return ctl_error_report(r, NULL);
        if (fflush(stdout) != 0) {
                fprintf(stderr, _("Cannot write the output: %s\n"), strerror(errno));
                return CTL_EXIT_FAILED;
        }
        return rn.status;
}
