/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "manager-renew.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/provider.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-registry.h"
#include "card-provider.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "manager-bus.h"
#include "polkit-check.h"
#include "portal-status.h"
#include "renewal-journal.h"
#include "renewal.h"
#include "secmem.h"
#include "token-bus.h"

/* A person types the PIN: give them time, but not forever. */
#define PIN_TIMEOUT_USEC (5ULL * 60 * 1000 * 1000)

typedef enum JobPhase {
        JOB_AUTHORIZING,
        JOB_AWAITING_PIN,
        JOB_RUNNING,
} JobPhase;

struct RenewalJob {
        Manager *m;
        RenewalJob *next;
        JobPhase phase;
        TokenObject *token;
        Reader *reader;          /* where the card is; NULL once pulled out */
        TokenWorker *own_worker; /* the worker, kept after the card was pulled out */
        char *cert_path;
        sd_bus_message *call; /* Renew() to answer; NULL for a resume */
        uid_t uid;
        PolkitCheck *polkit;
        sd_bus_slot *pin_slot;
        char *agent_owner, *agent_path;
        /* Two inhibitors rather than one "sleep:shutdown": logind 252 checks
         * a combined one against the lid switch's polkit action. */
        sd_bus_slot *inhibit_slot[2];
        int inhibit_fd[2];
        char *pin; /* secmem */
        atomic_int stop;
        /* What renewal_run() is given; the strings below are its. */
        RenewalParams params;
        char *order_id;
        uint8_t *old_cert;
        char *cmp_url;
        bool resume;
        bool rekey_encryption_key;
};

/* --- the jobs --- */

static RenewalJob *job_free(RenewalJob *job) {
        if (!job)
                return NULL;
        polkit_check_cancel(job->polkit);
        sd_bus_slot_unref(job->pin_slot);
        for (size_t i = 0; i < ELEMENTSOF(job->inhibit_fd); i++) {
                sd_bus_slot_unref(job->inhibit_slot[i]);
                if (job->inhibit_fd[i] >= 0)
                        close(job->inhibit_fd[i]);
        }
        sd_bus_message_unref(job->call);
        secmem_free(job->pin);
        token_worker_close(job->own_worker);
        free(job->cert_path);
        free(job->agent_owner);
        free(job->agent_path);
        free(job->order_id);
        free(job->old_cert);
        free(job->cmp_url);
        free(job);
        return NULL;
}

static void job_unlink(RenewalJob *job) {
        for (RenewalJob **p = &job->m->renewals; *p; p = &(*p)->next)
                if (*p == job) {
                        *p = job->next;
                        break;
                }
}

static RenewalJob *find_job_by_token(Manager *m, const TokenObject *t) {
        for (RenewalJob *j = m->renewals; j; j = j->next)
                if (j->token == t)
                        return j;
        return NULL;
}

static RenewalJob *find_job_by_worker(Manager *m, const TokenWorker *w) {
        for (RenewalJob *j = m->renewals; j; j = j->next)
                if ((j->reader && j->reader->worker == w) || j->own_worker == w)
                        return j;
        return NULL;
}

static void job_show(RenewalJob *job, TokenState phase, const char *step, unsigned percent,
                     const char *message) {
        token_object_set_renewal(job->token, phase, step, percent, message);
        manager_update_token(job->m, job->token);
}

static const char *outcome_name(RenewalError e) {
        switch (e) {
        case RENEWAL_OK:
                return "done";
        case RENEWAL_ERROR_CANCELLED:
                return "cancelled";
        case RENEWAL_ERROR_INTERRUPTED:
                return "interrupted";
        default:
                return "failed";
        }
}

/* Ends the job however it ended: the call answered, RenewalFinished sent,
 * the token shown as it is now and read again. */
static void job_end(RenewalJob *job, RenewalError e, const char *bus_error, const char *message,
                    const RenewalOutcome *out) {
        Manager *m = job->m;
        int r;

        job_unlink(job);
        if (job->call) {
                if (e == RENEWAL_OK)
                        r = sd_bus_reply_method_return(
                                job->call, "a{sv}", 5, "Serial", "s", out->new_serial, "NotAfter", "t",
                                (uint64_t) (out->new_not_after > 0 ? out->new_not_after : 0) * 1000000,
                                "Order", "s", job->order_id, "Rekeyed", "b", out->rekeyed, "Resumed", "b",
                                out->resumed);
                else
                        r = sd_bus_reply_method_errorf(job->call, bus_error, "%s", message);
                if (r < 0)
                        log_debug_errno(r, "Cannot answer Renew()");
        }
        /* A call refused before it reached the user's PIN leaves no trace on
         * the token: anyone may call, and must not change what others see. */
        if (job->phase == JOB_AUTHORIZING) {
                job_free(job);
                return;
        }
        job_show(job, e == RENEWAL_OK ? TOKEN_STATE_RENEWED : TOKEN_STATE_IDLE, outcome_name(e),
                 e == RENEWAL_OK ? 100 : job->token->progress, e == RENEWAL_OK ? "" : message);
        r = sd_bus_emit_signal(m->bus, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE, "RenewalFinished", "oss",
                               job->cert_path, outcome_name(e), message);
        if (r < 0)
                log_debug_errno(r, "Cannot send RenewalFinished");
        if (job->reader && job->reader->worker)
                manager_read_card(job->reader);
        manager_portal_ask(m, job->token);
        job_free(job);
}

static void job_fail(RenewalJob *job, RenewalError e, const char *message) {
        log_notice("Token %s: renewal of order %s %s: %s", job->token->key, job->order_id, outcome_name(e),
                   message);
        job_end(job, e, renewal_error_to_bus_error(e), message, NULL);
}

/* --- logind: no sleep or shutdown while a card is written --- */

static void inhibit_taken(RenewalJob *job, size_t i, sd_bus_message *reply) {
        int fd;

        job->inhibit_slot[i] = sd_bus_slot_unref(job->inhibit_slot[i]);
        if (sd_bus_message_is_method_error(reply, NULL))
                log_warning("logind gave no inhibitor: %s; sleep or shutdown could interrupt the renewal "
                            "(it resumes afterwards)",
                            sd_bus_message_get_error(reply)->message);
        else if (sd_bus_message_read(reply, "h", &fd) >= 0)
                job->inhibit_fd[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static int on_inhibit_sleep(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        inhibit_taken(userdata, 0, reply);
        return 0;
}

static int on_inhibit_shutdown(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        inhibit_taken(userdata, 1, reply);
        return 0;
}

static void job_inhibit(RenewalJob *job) {
        static const char *const what[2] = { "sleep", "shutdown" };
        static const sd_bus_message_handler_t done[2] = { on_inhibit_sleep, on_inhibit_shutdown };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(what); i++) {
                r = sd_bus_call_method_async(job->m->bus, &job->inhibit_slot[i], "org.freedesktop.login1",
                                             "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                             "Inhibit", done[i], job, "ssss", what[i], "keyrenew",
                                             "Writing a renewed certificate to a key", "block");
                if (r < 0)
                        log_debug_errno(r, "Cannot ask logind for a %s inhibitor", what[i]);
        }
}

/* --- the run on the worker --- */

static void on_renewal_event(TokenWorker *w, const TokenRenewalEvent *e, void *userdata) {
        RenewalJob *job = userdata;
        const RenewalOutcome *out = e->outcome;

        if (!out) {
                job_show(job, TOKEN_STATE_RENEWING, e->step, e->percent, NULL);
                return;
        }
        token_object_set_mgm_key(job->token, out->mgm_key[0] ? out->mgm_key : NULL);
        secmem_free(job->pin);
        job->pin = NULL;
        if (out->error == RENEWAL_OK)
                log_info("Token %s: order %s renewed%s: new certificate %s", job->token->key, job->order_id,
                         out->resumed ? " (resumed)" : "", out->new_serial);
        else
                log_notice("Token %s: renewal of order %s %s at step %s: %s", job->token->key, job->order_id,
                           outcome_name(out->error),
                           out->step < _RENEWAL_STEP_MAX ? renewal_step_to_string(out->step) : "none",
                           out->message);
        if (strcmp(out->mgm_key, "default") == 0)
                log_warning("Token %s still has the default management key: anyone can change it",
                            job->token->key);
        job_end(job, out->error, renewal_error_to_bus_error(out->error), out->message, out);
}

static void job_run(RenewalJob *job) {
        Manager *m = job->m;
        int r;

        job->params = (RenewalParams){
                .dir_fd = m->state_dir_fd,
                .order_id = job->order_id,
                .token_serial = job->token->key,
                .slot = job->params.slot,
                .old_cert = job->old_cert,
                .old_cert_len = job->params.old_cert_len,
                .rekey = job->params.rekey,
                .cmp_url = job->cmp_url,
                .uid = (int64_t) job->uid,
                .ca_bundle = m->portal_ca_bundle,
                .cmp_trusted = m->portal_cmp_trusted,
                .mgm_key_dir = m->mgm_key_dir,
                .pin = job->pin,
                .libctx = m->libctx,
                .stop = &job->stop,
        };
        r = token_worker_renew(job->reader->worker, &job->params, on_renewal_event, job);
        if (r < 0) {
                job_fail(job, RENEWAL_ERROR_CARD, _("Another renewal of this key is under way."));
                return;
        }
        job->phase = JOB_RUNNING;
        /* The run's first step checks the PIN: no step back in between. */
        job_show(job, TOKEN_STATE_RENEWING, "pin", 0, "");
        job_inhibit(job);
}

/* --- the PIN --- */

static void agent_cancel(RenewalJob *job) {
        if (!job->pin_slot)
                return;
        job->pin_slot = sd_bus_slot_unref(job->pin_slot);
        (void) sd_bus_call_method_async(job->m->bus, NULL, job->agent_owner, job->agent_path,
                                        AGENT_BUS_INTERFACE, "Cancel", NULL, NULL, "o", job->cert_path);
}

static int on_pin_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        RenewalJob *job = userdata;
        const sd_bus_error *e;
        const char *pin = NULL;
        int r;

        job->pin_slot = sd_bus_slot_unref(job->pin_slot);
        e = sd_bus_message_get_error(reply);
        if (e) {
                _cleanup_free_ char *why = NULL;

                if (sd_bus_error_has_name(e, BUS_ERROR_CANCELLED))
                        job_fail(job, RENEWAL_ERROR_CANCELLED,
                                 _("The renewal was cancelled; the key's certificate was not changed."));
                else if (asprintf(&why, _("The PIN was not given (%s). Renew again when you are ready."),
                                  e->message ? e->message : e->name) >= 0)
                        job_fail(job, RENEWAL_ERROR_CANCELLED, why);
                else
                        job_fail(job, RENEWAL_ERROR_CANCELLED, e->name);
                return 0;
        }
        r = sd_bus_message_read(reply, "s", &pin);
        if (r >= 0) {
                job->pin = secmem_strndup(pin, strlen(pin));
                /* The message's copy goes now, not when sd-bus frees it. */
                secmem_wipe((char *) pin, strlen(pin));
        }
        if (r < 0 || !job->pin) {
                job_fail(job, RENEWAL_ERROR_CARD,
                         _("The PIN agent's answer could not be read. Renew again."));
                return 0;
        }
        if (!job->reader || !job->reader->worker) {
                job_fail(job, RENEWAL_ERROR_INTERRUPTED,
                         _("The key was pulled out. Plug it in again and renew again."));
                return 0;
        }
        job_run(job);
        return 0;
}

static int append_pin_info(RenewalJob *job, sd_bus_message *msg) {
        TokenObject *t = job->token;
        CertObject *c = token_object_find_cert_by_path(t, job->cert_path);
        _cleanup_free_ char *error = NULL;
        int r;

        if (t->last_error && (error = strdup(t->last_error)) == NULL)
                return -ENOMEM;
        r = sd_bus_message_append(msg, "a{sv}", 7, "TokenSerial", "s", t->identity.serial, "TokenLabel", "s",
                                  t->identity.label, "Subject", "s", c ? c->info->subject : "", "NotAfter",
                                  "t", c ? (uint64_t) c->info->not_after * 1000000 : 0, "RetriesLeft", "i",
                                  (int32_t) t->pin_retries, "Resume", "b", job->resume, "Error", "s",
                                  error ? error : "");
        return r;
}

static int job_ask_pin(RenewalJob *job, const Agent *agent) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        int r;

        job->agent_owner = strdup(agent->owner);
        job->agent_path = strdup(agent->path);
        if (!job->agent_owner || !job->agent_path)
                return -ENOMEM;
        r = sd_bus_message_new_method_call(job->m->bus, &msg, agent->owner, agent->path, AGENT_BUS_INTERFACE,
                                           "RequestPin");
        if (r >= 0)
                r = sd_bus_message_append(msg, "o", job->cert_path);
        if (r >= 0)
                r = append_pin_info(job, msg);
        if (r < 0)
                return r;
        /* The state first: a client shows it before it prompts. */
        job->phase = JOB_AWAITING_PIN;
        job_show(job, TOKEN_STATE_AWAITING_PIN, "pin", 0, NULL);
        return sd_bus_call_async(job->m->bus, &job->pin_slot, msg, on_pin_reply, job, PIN_TIMEOUT_USEC);
}

/* --- Renew() --- */

static void on_polkit(PolkitCheck *check, PolkitResult result, int error, void *userdata) {
        RenewalJob *job = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const Agent *agent = NULL;
        int r;

        job->polkit = NULL;
        r = polkit_check_result_to_bus_error(result, error, POLKIT_ACTION_RENEW, &e);
        if (r < 0) {
                job_end(job, RENEWAL_ERROR_CANCELLED, e.name, e.message, NULL);
                return;
        }
        r = agent_registry_find_for_message(job->m->agents, job->call, &agent);
        if (r < 0) {
                job_end(job, RENEWAL_ERROR_CANCELLED, BUS_ERROR_NO_AGENT,
                        _("No PIN agent is registered for your session: run keyrenewctl renew in a "
                          "terminal, "
                          "or start keyrenew-tray."),
                        NULL);
                return;
        }
        r = job_ask_pin(job, agent);
        if (r < 0)
                job_fail(job, RENEWAL_ERROR_CARD, _("The PIN agent could not be asked. Renew again."));
}

static CertObject *find_cert(Manager *m, const char *path, TokenObject **ret_token) {
        for (size_t i = 0; i < m->n_tokens; i++) {
                CertObject *c = token_object_find_cert_by_path(m->tokens[i], path);

                if (c) {
                        *ret_token = m->tokens[i];
                        return c;
                }
        }
        return NULL;
}

static Reader *find_reader(Manager *m, const TokenObject *t) {
        for (size_t i = 0; i < m->n_readers; i++)
                if (m->readers[i].token == t && m->readers[i].worker)
                        return &m->readers[i];
        return NULL;
}

/* The unfinished journal of t's slot, if any (to resume it). */
static RenewalJournal *find_journal(Manager *m, const TokenObject *t, int slot) {
        RenewalJournal **list = NULL, *found = NULL;
        char **bad = NULL;
        size_t n = 0;

        if (m->state_dir_fd < 0 || renewal_journal_list(m->state_dir_fd, false, &list, &n, &bad) < 0)
                return NULL;
        for (size_t i = 0; i < n && !found; i++)
                if (strcmp(list[i]->token_serial, t->key) == 0 && (slot < 0 || list[i]->slot == slot)) {
                        found = list[i];
                        list[i] = NULL;
                }
        for (size_t i = 0; bad && bad[i]; i++) {
                log_warning("Renewal journal %s cannot be read; it is left in place", bad[i]);
                free(bad[i]);
        }
        free(bad);
        renewal_journal_list_free(list, n);
        return found;
}

static int no_renewal_error(const CertObject *c, sd_bus_error *error) {
        const char *s = c->renewal_state ? c->renewal_state : "none";

        if (strcmp(s, "awaiting-payment") == 0)
                return sd_bus_error_setf(error, BUS_ERROR_NO_RENEWAL,
                                         _("The renewal order %s is not paid yet: pay it on the order page "
                                           "(%s), then renew."),
                                         c->renewal_order ?: "", c->portal_url ?: "");
        if (strcmp(s, "under-review") == 0)
                return sd_bus_error_setf(
                        error, BUS_ERROR_NO_RENEWAL,
                        _("The renewal order %s is still under review by the CA; you will be "
                          "told when it is approved."),
                        c->renewal_order ?: "");
        if (strcmp(s, "rejected") == 0)
                return sd_bus_error_setf(error, BUS_ERROR_NO_RENEWAL,
                                         _("The CA rejected the renewal order %s: %s. See the order page "
                                           "(%s)."),
                                         c->renewal_order ?: "", c->reject_reason ?: "",
                                         c->portal_url ?: "");
        return sd_bus_error_setf(error, BUS_ERROR_NO_RENEWAL,
                                 _("There is no approved renewal for this certificate (renewal state: %s). "
                                   "Order and pay the renewal on the CA's portal first."),
                                 s);
}

/* What the run needs of the order, from the journal (a resume) or from
 * what the portal said about the certificate (a new renewal). */
static int job_take(RenewalJob *job, const char *order, const char *cmp_url, const uint8_t *old_cert,
                    size_t old_cert_len, unsigned slot, bool rekey) {
        job->order_id = strdup(order);
        job->cmp_url = strdup(cmp_url);
        job->old_cert = malloc(old_cert_len);
        if (!job->order_id || !job->cmp_url || !job->old_cert)
                return -ENOMEM;
        memcpy(job->old_cert, old_cert, old_cert_len);
        job->params.old_cert_len = old_cert_len;
        job->params.slot = slot;
        job->params.rekey = rekey;
        return 0;
}

static int job_take_journal(RenewalJob *job, RenewalJournal *j) {
        job->resume = true;
        return job_take(job, j->order_id, j->cmp_url, j->old_cert, j->old_cert_len, j->slot, j->rekey);
}

static int job_take_order(RenewalJob *job, const CertObject *c) {
        job->rekey_encryption_key = c->renewal_rekey && (c->info->usage & X509_USAGE_ENCRYPTION);
        return job_take(job, c->renewal_order, c->renewal_cmp, c->der, c->der_len, c->slot,
                        c->renewal_rekey);
}

static int job_new(Manager *m, TokenObject *t, Reader *reader, const char *cert_path, RenewalJob **ret) {
        RenewalJob *job = calloc(1, sizeof *job);

        if (!job)
                return -ENOMEM;
        job->m = m;
        job->token = t;
        job->reader = reader;
        job->inhibit_fd[0] = job->inhibit_fd[1] = -1;
        job->uid = (uid_t) -1;
        atomic_init(&job->stop, RENEWAL_STOP_NONE);
        job->cert_path = strdup(cert_path);
        if (!job->cert_path) {
                free(job);
                return -ENOMEM;
        }
        *ret = job;
        return 0;
}

static int read_renew_options(sd_bus_message *call, bool *ret_accept_key_loss, sd_bus_error *error) {
        char shown[BUS_SHOWN_MAX];
        bool accept = false;
        const char *key;
        int r;

        r = sd_bus_message_enter_container(call, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(call, 'e', "sv")) > 0) {
                r = sd_bus_message_read(call, "s", &key);
                if (r >= 0 && strcmp(key, "AcceptKeyLoss") == 0)
                        r = sd_bus_message_read(call, "v", "b", &accept);
                else if (r >= 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, _("Unknown option %s."),
                                                 manager_bus_shown(key, shown));
                /* A variant of another type. */
                if (r == -ENXIO)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 _("The option AcceptKeyLoss is a boolean (b)."));
                if (r >= 0)
                        r = sd_bus_message_exit_container(call);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(call);
        if (r < 0)
                return r;
        *ret_accept_key_loss = accept;
        return 0;
}

/* What Renew() can check at once, before polkit is asked. */
static int renew_precheck(Manager *m, const char *path, TokenObject **ret_t, CertObject **ret_c,
                          Reader **ret_r, sd_bus_error *error) {
        TokenObject *t = NULL;
        CertObject *c = find_cert(m, path, &t);
        char shown[BUS_SHOWN_MAX];
        Reader *reader;

        if (!c)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_CERTIFICATE,
                                         _("%s is not a certificate keyrenewd knows."),
                                         manager_bus_shown(path, shown));
        reader = find_reader(m, t);
        if (!t->present || !reader)
                return sd_bus_error_setf(error, BUS_ERROR_TOKEN_ABSENT,
                                         _("The key is not plugged in: plug it in and renew again."));
        if (find_job_by_token(m, t))
                return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                         _("A renewal of this key is already under way."));
        if (m->state_dir_fd < 0)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_CONFIGURED,
                                         _("keyrenewd runs without a state directory, where a renewal keeps "
                                           "its journal: renewals are off. Ask your administrator."));
        *ret_t = t;
        *ret_c = c;
        *ret_r = reader;
        return 0;
}

int manager_renew_method(Manager *m, sd_bus_message *call, sd_bus_error *error) {
        _cleanup_(renewal_journal_freep) RenewalJournal *journal = NULL;
        _cleanup_free_ char *session = NULL;
        RenewalJob *job = NULL;
        TokenObject *t = NULL;
        CertObject *c = NULL;
        Reader *reader = NULL;
        const char *path;
        bool accept = false;
        int r;

        r = sd_bus_message_read(call, "o", &path);
        if (r >= 0)
                r = read_renew_options(call, &accept, error);
        if (r >= 0 && !sd_bus_error_is_set(error))
                r = renew_precheck(m, path, &t, &c, &reader, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;

        journal = find_journal(m, t, (int) c->slot);
        if (!journal &&
            !(c->renewal_state && c->renewal_order && c->renewal_cmp &&
              (strcmp(c->renewal_state, "approved") == 0 || strcmp(c->renewal_state, "issued") == 0)))
                return no_renewal_error(c, error);
        r = job_new(m, t, reader, path, &job);
        if (r >= 0)
                r = journal ? job_take_journal(job, journal) : job_take_order(job, c);
        if (r >= 0 && job->rekey_encryption_key && !accept) {
                job_free(job);
                return sd_bus_error_setf(
                        error, BUS_ERROR_CONFIRMATION_REQUIRED,
                        _("This renewal replaces a key that decrypts (an encryption certificate): anything "
                          "encrypted to the old key, such as sealed bids or encrypted mail, can no longer "
                          "be "
                          "opened once it is gone. Decrypt what you still need first, then renew and accept "
                          "the loss of the old key."));
        }
        /* Whose agent a resume asks, should this renewal be interrupted. */
        if (r >= 0 && agent_caller_identity(call, &job->uid, &session) < 0)
                job->uid = (uid_t) -1;
        if (r >= 0) {
                job->call = sd_bus_message_ref(call);
                r = polkit_check_start(m->bus, call, POLKIT_ACTION_RENEW, on_polkit, job, &job->polkit);
        }
        if (r < 0) {
                job_free(job);
                return r;
        }
        job->next = m->renewals;
        m->renewals = job;
        return 1;
}

/* --- Cancel() --- */

int manager_cancel_method(Manager *m, sd_bus_message *call, sd_bus_error *error) {
        TokenObject *t = NULL;
        RenewalJob *job = NULL;
        const char *path;
        uid_t uid = (uid_t) -1;
        _cleanup_free_ char *session = NULL;
        int r;

        r = sd_bus_message_read(call, "o", &path);
        if (r < 0)
                return r;
        if (find_cert(m, path, &t))
                job = find_job_by_token(m, t);
        if (!job || strcmp(job->cert_path, path) != 0)
                return sd_bus_error_setf(error, BUS_ERROR_NO_RENEWAL,
                                         _("No renewal of this certificate is under way."));
        /* Only the user who started it (or root) cancels it. */
        r = agent_caller_identity(call, &uid, &session);
        if (r < 0 || (uid != job->uid && uid != 0))
                return sd_bus_error_setf(error, BUS_ERROR_NOT_AUTHORIZED,
                                         _("Only the user who started this renewal can cancel it."));
        if (job->phase == JOB_RUNNING) {
                atomic_store(&job->stop, RENEWAL_STOP_CANCEL);
        } else {
                agent_cancel(job);
                job_fail(job, RENEWAL_ERROR_CANCELLED,
                         _("The renewal was cancelled; the key's certificate was not changed."));
        }
        return sd_bus_reply_method_return(call, NULL);
}

/* --- agents --- */

int manager_register_agent_method(Manager *m, sd_bus_message *call, sd_bus_error *error) {
        _cleanup_free_ char *session = NULL;
        const char *path;
        uid_t uid;
        int r;

        r = sd_bus_message_read(call, "o", &path);
        if (r >= 0)
                r = agent_caller_identity(call, &uid, &session);
        if (r >= 0)
                r = agent_registry_register(m->agents, sd_bus_message_get_sender(call), path, session, uid);
        if (r == -EEXIST)
                return sd_bus_error_setf(error, BUS_ERROR_AGENT_EXISTS,
                                         _("Your session has a PIN agent already (keyrenew-tray or another "
                                           "keyrenewctl); it answers the PIN requests."));
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, _("Not a valid agent path."));
        if (r < 0)
                return r;
        log_debug("PIN agent %s%s registered by uid %u", sd_bus_message_get_sender(call), path,
                  (unsigned) uid);
        return sd_bus_reply_method_return(call, NULL);
}

int manager_unregister_agent_method(Manager *m, sd_bus_message *call, sd_bus_error *error) {
        char shown[BUS_SHOWN_MAX];
        const char *path;
        int r;

        r = sd_bus_message_read(call, "o", &path);
        if (r >= 0)
                r = agent_registry_unregister(m->agents, sd_bus_message_get_sender(call), path);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_AGENT,
                                         _("You have no PIN agent registered at %s."),
                                         manager_bus_shown(path, shown));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(call, NULL);
}

static void on_agent_removed(AgentRegistry *reg, const Agent *agent, void *userdata) {
        Manager *m = userdata;

        for (RenewalJob *job = m->renewals, *next; job; job = next) {
                next = job->next;
                if (job->phase == JOB_AWAITING_PIN && job->agent_owner &&
                    strcmp(job->agent_owner, agent->owner) == 0 &&
                    strcmp(job->agent_path, agent->path) == 0) {
                        job->pin_slot = sd_bus_slot_unref(job->pin_slot);
                        job_fail(job, RENEWAL_ERROR_CANCELLED,
                                 _("The PIN agent went away before it gave the PIN. Renew again."));
                }
        }
}

/* --- GetHistory() --- */

static const char *history_string(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        return json_is_string(v) ? json_string_value(v) : "";
}

static uint64_t history_usec(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        time_t t = 0;

        if (json_is_integer(v))
                t = (time_t) json_integer_value(v);
        else if (json_is_string(v) && portal_parse_timestamp(json_string_value(v), &t) < 0)
                t = 0;
        return t > 0 ? (uint64_t) t * 1000000 : 0;
}

static int append_history_entry(sd_bus_message *reply, json_t *o) {
        char slot[8];

        (void) snprintf(slot, sizeof slot, "%02x",
                        (unsigned) json_integer_value(json_object_get(o, "slot")) & 0xffu);
        return sd_bus_message_append(
                reply, "a{sv}", 9, "Order", "s", history_string(o, "order"), "Token", "s",
                history_string(o, "token"), "Slot", "s", slot, "OldCertificate", "s",
                history_string(o, "old_cert"), "NewSerial", "s", history_string(o, "new_serial"), "NotAfter",
                "t", history_usec(o, "not_after"), "Time", "t", history_usec(o, "time"), "Outcome", "s",
                history_string(o, "outcome"), "Reason", "s", history_string(o, "reason"));
}

int manager_get_history_method(Manager *m, sd_bus_message *call, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_t *history = NULL, *o;
        size_t bad = 0, i;
        int r = 0;

        if (m->state_dir_fd >= 0)
                r = renewal_history_read(m->state_dir_fd, &history, &bad);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, _("The renewal history cannot be read: %s"),
                                               strerror(-r));
        if (bad > 0)
                log_warning("%zu line(s) of the renewal history cannot be read; they are left out", bad);
        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        json_array_foreach(history, i, o) {
                if (r >= 0)
                        r = append_history_entry(reply, o);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        json_decref(history);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* --- the card comes and goes --- */

bool manager_renew_card_removed(Manager *m, Reader *r) {
        RenewalJob *job = find_job_by_worker(m, r->worker);

        if (!job)
                return false;
        job->reader = NULL;
        if (job->phase != JOB_RUNNING) {
                agent_cancel(job);
                job_fail(job, RENEWAL_ERROR_INTERRUPTED,
                         _("The key was pulled out before the renewal began. Plug it in again and renew "
                           "again."));
                return false;
        }
        job->own_worker = r->worker;
        return true;
}

void manager_renew_token_read(Manager *m, Reader *r, TokenObject *t) {
        _cleanup_(renewal_journal_freep) RenewalJournal *journal = NULL;
        const Agent *agent;
        CertObject *c;
        RenewalJob *job = NULL;
        int k;

        if (find_job_by_token(m, t) || !(journal = find_journal(m, t, -1)))
                return;
        c = token_object_find_cert(t, journal->slot);
        agent = journal->uid >= 0 ? agent_registry_find(m->agents, (uid_t) journal->uid, NULL) : NULL;
        if (!c || !agent) {
                log_info("Token %s: the renewal of order %s is unfinished (step %s); it goes on at the next "
                         "Renew()%s",
                         t->key, journal->order_id, renewal_step_to_string(journal->step),
                         agent ? "" : " or when its user has a PIN agent");
                return;
        }
        k = job_new(m, t, r, c->path, &job);
        if (k >= 0)
                k = job_take_journal(job, journal);
        if (k >= 0) {
                job->uid = (uid_t) journal->uid;
                job->next = m->renewals;
                m->renewals = job;
                log_info("Token %s: resuming the renewal of order %s from step %s", t->key,
                         journal->order_id, renewal_step_to_string(journal->step));
                k = job_ask_pin(job, agent);
                if (k < 0)
                        job_fail(job, RENEWAL_ERROR_CARD,
                                 _("The PIN agent could not be asked. Renew again."));
                return;
        }
        job_free(job);
        log_error_errno(k, "Token %s: cannot resume the renewal of order %s", t->key, journal->order_id);
}

/* --- set-up --- */

/* Files the renewals a previous run ended but did not move to the history. */
static void file_finished_journals(Manager *m) {
        RenewalJournal **list = NULL;
        char **bad = NULL;
        size_t n = 0;

        if (renewal_journal_list(m->state_dir_fd, true, &list, &n, &bad) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (renewal_step_is_final(list[i]->step) &&
                    renewal_history_append(m->state_dir_fd, list[i], time(NULL)) >= 0)
                        (void) renewal_journal_remove(m->state_dir_fd, list[i]);
        for (size_t i = 0; bad && bad[i]; i++) {
                log_warning("Renewal journal %s cannot be read; it is left in place", bad[i]);
                free(bad[i]);
        }
        free(bad);
        renewal_journal_list_free(list, n);
}

int manager_renew_init(Manager *m, const ManagerSettings *settings) {
        int r;

        m->state_dir_fd = -1;
        r = agent_registry_new(m->bus, &m->agents);
        if (r < 0)
                return r;
        agent_registry_set_removed_callback(m->agents, on_agent_removed, m);
        m->libctx = OSSL_LIB_CTX_new();
        if (!m->libctx)
                return -ENOMEM;
        r = card_provider_load(m->libctx, &m->card_provider);
        if (r < 0)
                return r;
        if (settings->portal_ca_bundle && !(m->portal_ca_bundle = strdup(settings->portal_ca_bundle)))
                return -ENOMEM;
        if (settings->portal_cmp_trusted && !(m->portal_cmp_trusted = strdup(settings->portal_cmp_trusted)))
                return -ENOMEM;
        if (settings->mgm_key_dir && !(m->mgm_key_dir = strdup(settings->mgm_key_dir)))
                return -ENOMEM;
        if (m->state_dir) {
                /* systemd's StateDirectory= makes it; a test or a hand-run daemon may not have. */
                if (mkdir(m->state_dir, 0700) < 0 && errno != EEXIST)
                        return log_error_errno(-errno, "Cannot make the state directory %s", m->state_dir);
                m->state_dir_fd = open(m->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (m->state_dir_fd < 0)
                        return log_error_errno(-errno, "Cannot open the state directory %s", m->state_dir);
                file_finished_journals(m);
        }
        return 0;
}

void manager_renew_stop(Manager *m) {
        for (RenewalJob *job = m->renewals; job; job = job->next) {
                atomic_store(&job->stop, RENEWAL_STOP_SHUTDOWN);
                agent_cancel(job);
                job->own_worker = (token_worker_close(job->own_worker), NULL);
        }
}

void manager_renew_done(Manager *m) {
        while (m->renewals) {
                RenewalJob *job = m->renewals;

                m->renewals = job->next;
                if (job->call)
                        (void) sd_bus_reply_method_errorf(
                                job->call, BUS_ERROR_INTERRUPTED, "%s",
                                _("keyrenewd is stopping. Nothing was lost: the renewal goes on from where "
                                  "it "
                                  "stopped when it starts again and you renew again (or plug the key in)."));
                job_free(job);
        }
        agent_registry_free(m->agents);
        if (m->card_provider)
                OSSL_PROVIDER_unload(m->card_provider);
        OSSL_LIB_CTX_free(m->libctx);
        free(m->portal_ca_bundle);
        free(m->portal_cmp_trusted);
        free(m->mgm_key_dir);
        if (m->state_dir_fd >= 0)
                close(m->state_dir_fd);
}
