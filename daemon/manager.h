/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's model of the world: the readers PC/SC reports, the cards in
 * them and whether pcscd can be reached, shown on the bus by manager-bus.c;
 * the tokens the cards turn out to be (token-object.h), each card read by a
 * worker thread of its own (token-worker.h); the expiry policy's timer.
 * Everything here runs on the loop thread. */

#include <openssl/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <uv.h>

#include "config-file.h"
#include "curl-loop.h"
#include "pcsc-monitor.h"
#include "portal-client.h"
#include "token-object.h"
#include "token-worker.h"
#include "wall-timer.h"

typedef struct Reader {
        char name[MAX_READERNAME];
        bool card_present;
        uint8_t atr[MAX_ATR_SIZE];
        size_t atr_len;
        TokenWorker *worker;      /* while a card is in */
        TokenObject *token;       /* what the card turned out to be, once identified */
        uint64_t read_started_ns; /* uv_hrtime() when the last read was asked for */
        bool inserted;            /* the read under way is the first since the card went in */
        bool ask_portal;          /* read since it went in: the portal is to hear of it */
} Reader;

typedef struct RenewalJob RenewalJob;

typedef struct ManagerSettings {
        const unsigned *warn_days; /* [Expiry] WarnDays */
        size_t n_warn_days;
        const char *state_dir;             /* where tokens are remembered; NULL: nowhere */
        const char *portal_url;            /* [Portal] Url; NULL: no portal */
        const char *portal_ca_bundle;      /* [Portal] CABundle; NULL: the system's CAs */
        const char *portal_cmp_trusted;    /* [Portal] CmpTrustedCA, else CABundle; NULL: none */
        const char *mgm_key_dir;           /* [Renewal] ManagementKeyDirectory */
        unsigned portal_poll_interval_sec; /* [Portal] PollIntervalSec */
} ManagerSettings;

/* The Manager's PortalState. */
typedef enum PortalState {
        PORTAL_STATE_NOT_CONFIGURED, /* no [Portal] Url */
        PORTAL_STATE_UNKNOWN,        /* not asked yet, or the first poll is under way */
        PORTAL_STATE_REACHABLE,      /* the last poll was answered */
        PORTAL_STATE_FAILING,        /* the last poll failed: PortalError says why */
        _PORTAL_STATE_MAX,
} PortalState;

const char *portal_state_to_string(PortalState s);

struct Manager {
        uv_loop_t *loop;
        sd_bus *bus;
        sd_bus_slot *object_manager_slot;
        sd_bus_slot *manager_slot;
        bool pcsc_known;          /* a first state came from the monitor */
        bool pcsc_settled;        /* and the cards in at that time have had time to show */
        uv_timer_t *settle_timer; /* until pcsc_settled */
        PcscState pcsc_state;
        Reader readers[PCSC_MONITOR_MAX_READERS]; /* in the order they appeared */
        size_t n_readers;
        size_t n_cards;
        unsigned warn_days[CONFIG_WARN_DAYS_MAX];
        size_t n_warn_days;
        char *state_dir;
        struct TokenStoreWriter *store; /* writes the tokens' files, when there is a state_dir */
        TokenObject **tokens;           /* every token known, present or not */
        size_t n_tokens;
        WallTimer *expiry_timer;
        sd_bus_message **refresh_waiters; /* Manager.Refresh() calls waiting for the reads */
        size_t n_refresh_waiters;
        /* The renewal status client, when a portal is configured. The
         * CurlLoop is made before any thread (curl_global_init()) and
         * closed after the client. */
        CurlLoop *curl;
        PortalClient *portal;
        PortalState portal_state;
        uint64_t last_portal_check_usec; /* when the last poll ended (wall clock); 0: never */
        uint64_t next_portal_check_usec; /* when the next is due (wall clock); 0: none, or polling */
        char *portal_error;              /* why the last poll failed; NULL after one that worked */
        sd_bus_slot *sleep_slot;         /* logind's PrepareForSleep, to ask again after a resume */
        /* Renewals (manager-renew.c). */
        struct AgentRegistry *agents;
        RenewalJob *renewals;
        OSSL_LIB_CTX *libctx; /* with the card provider, for card keys */
        OSSL_PROVIDER *card_provider;
        char *portal_ca_bundle;
        char *portal_cmp_trusted;
        char *mgm_key_dir;
        int state_dir_fd; /* -1: none */
};

/* Puts the manager's objects on bus (the name is requested elsewhere),
 * with the tokens remembered in the state directory. */
int manager_new(uv_loop_t *loop, sd_bus *bus, const ManagerSettings *settings, Manager **ret);
/* Takes the objects off the bus and frees m. NULL is fine. */
void manager_free(Manager *m);

/* Applies a change the PC/SC monitor saw, logs it and tells the bus. */
void manager_pcsc_event(Manager *m, const PcscEvent *e);

/* Manager.Refresh(): reads every card again; call is answered when all
 * reads are over. Returns 1 (answer deferred) or a negative errno. */
int manager_refresh(Manager *m, sd_bus_message *call, sd_bus_error *error);
/* Token.Refresh(): reads t's card again; call is answered when it is
 * read, with CardError when that fails and TokenAbsent when t is not (or
 * no longer) plugged in. */
int manager_refresh_token(Manager *m, TokenObject *t, sd_bus_message *call, sd_bus_error *error);
/* For manager-renew.c: sends what changed about t (and saves it when
 * needed); reads the card in r again; asks the portal about t's
 * certificates now (at most once a minute). */
void manager_update_token(Manager *m, TokenObject *t);
void manager_read_card(Reader *r);
void manager_portal_ask(Manager *m, const TokenObject *inserted);

/* The token known by serial, or NULL. */
TokenObject *manager_find_token_by_serial(Manager *m, const char *serial);
