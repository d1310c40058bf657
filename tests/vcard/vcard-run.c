/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew-vcard run: be the card in a vpcd reader until it is pulled out. */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "card-state.h"
#include "macro.h"
#include "piv-applet.h"
#include "vcard-commands.h"
#include "vcard-faults.h"
#include "vpcd-link.h"

typedef struct RunOptions {
        const char *state;
        const char *host;
        unsigned port;
        unsigned connect_timeout_s;
        const char *log;
        VcardFaults faults;
} RunOptions;

typedef struct Runner {
        const RunOptions *opt;
        PivCard *card;
        int fd;
        FILE *log;
        unsigned apdus;
} Runner;

static void run_usage(FILE *f) {
        fputs("Usage: keyrenew-vcard run STATE --port P [--host 127.0.0.1] [--connect-timeout SEC]\n"
              "        [--vanish-before N] [--vanish-after N] [--freeze-after N] [--delay-ms MS]\n"
              "        [--fail-sw N:SW]... [--log FILE]\n"
              "\n"
              "Faults (APDUs counted from 1 since the connection, GET RESPONSE and chained\n"
              "pieces included, vpcd's control codes not):\n"
              "  --vanish-before N  close the connection instead of answering APDU N; exit 3\n"
              "  --vanish-after N   answer APDU N, then close the connection; exit 3\n"
              "  --freeze-after N   answer APDU N, print \"frozen after N\" on stderr, then\n"
              "                     answer nothing more, connection open, until SIGTERM or\n"
              "                     SIGINT (exit 3) or SIGKILL\n"
              "  --delay-ms MS      sleep before every answer\n"
              "  --fail-sw N:SW     answer APDU N with status word SW only (e.g. 6A82)\n",
              f);
}

static void on_signal(int sig) {
        /* Nothing to do: the signal only ends ppoll(), which then reports EINTR. */
}

static uint64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* One line per APDU; never the data, which may hold a PIN or a key. */
static void log_apdu(Runner *rn, uint8_t ins, const char *what, uint64_t us) {
        if (!rn->log)
                return;
        fprintf(rn->log, "apdu=%u ins=%02X %s us=%llu\n", rn->apdus, ins, what, (unsigned long long) us);
        fflush(rn->log);
}

/* 0 when the APDU was answered, 1 when the card is to freeze now, -ECONNABORTED
 * to vanish, or another error. */
static int answer_apdu(Runner *rn, const uint8_t *apdu, size_t len) {
        uint8_t resp[PIV_APDU_RESPONSE_MAX];
        const VcardFaults *f = &rn->opt->faults;
        uint64_t start = now_us();
        uint8_t ins = len > 1 ? apdu[1] : 0;
        char what[32];
        size_t resp_len;
        uint16_t sw = 0;
        int r;

        rn->apdus++;
        switch (vcard_faults_before(f, rn->apdus, &sw)) {
        case VCARD_FAULT_VANISH:
                log_apdu(rn, ins, "fault=vanish-before", now_us() - start);
                return -ECONNABORTED;
        case VCARD_FAULT_SW:
                resp[0] = (uint8_t) (sw >> 8);
                resp[1] = (uint8_t) sw;
                resp_len = 2;
                snprintf(what, sizeof what, "sw=%04X fault=fail-sw", sw);
                break;
        default:
                r = piv_applet_process(rn->card, apdu, len, resp, sizeof resp, &resp_len);
                if (r < 0)
                        return r;
                /* The card keeps what it did even if it is pulled out right after. */
                if (rn->card->dirty) {
                        r = card_state_save(rn->opt->state, rn->card);
                        if (r < 0) {
                                fprintf(stderr, "keyrenew-vcard: cannot save %s: %s\n", rn->opt->state,
                                        strerror(-r));
                                return r;
                        }
                }
                snprintf(what, sizeof what, "sw=%02X%02X", resp[resp_len - 2], resp[resp_len - 1]);
        }
        if (f->delay_ms > 0)
                (void) nanosleep(&(struct timespec){ .tv_sec = f->delay_ms / 1000,
                                                     .tv_nsec = (long) (f->delay_ms % 1000) * 1000000 },
                                 NULL);
        r = vpcd_send(rn->fd, resp, resp_len);
        if (r < 0)
                return r;
        if (vcard_faults_vanish_after(f, rn->apdus)) {
                strncat(what, " fault=vanish-after", sizeof what - strlen(what) - 1);
                log_apdu(rn, ins, what, now_us() - start);
                return -ECONNABORTED;
        }
        if (vcard_faults_freeze_after(f, rn->apdus)) {
                strncat(what, " fault=freeze-after", sizeof what - strlen(what) - 1);
                log_apdu(rn, ins, what, now_us() - start);
                return 1;
        }
        log_apdu(rn, ins, what, now_us() - start);
        return 0;
}

/* A card that hangs in the middle of a transaction: nothing more is read or
 * answered, the connection stays open, until the card is pulled out
 * (SIGTERM, SIGINT) or killed. The line on stderr tells a test the moment. */
static int freeze(Runner *rn, const sigset_t *wait_mask) {
        fprintf(stderr, "frozen after %u\n", rn->apdus);
        fflush(stderr);
        /* Only SIGTERM and SIGINT have handlers, so only they end the wait. */
        (void) sigsuspend(wait_mask);
        return -ECONNABORTED;
}

static int control(Runner *rn, uint8_t code) {
        const uint8_t *atr;
        size_t len;

        switch (code) {
        case VPCD_CTRL_OFF:
        case VPCD_CTRL_ON:
        case VPCD_CTRL_RESET:
                piv_card_session_reset(rn->card);
                return 0;
        case VPCD_CTRL_ATR:
                piv_applet_atr(&atr, &len);
                return vpcd_send(rn->fd, atr, len);
        default:
                return 0; /* vpcd defines no other code; ignore it as a card would */
        }
}

/* Serves until vpcd closes (0), a signal (0), a fault (-ECONNABORTED; a
 * frozen card once a signal came) or an error. */
static int serve(Runner *rn, const sigset_t *wait_mask) {
        static uint8_t msg[VPCD_MESSAGE_MAX];
        size_t len;
        int r;

        for (;;) {
                r = vpcd_receive(rn->fd, wait_mask, msg, sizeof msg, &len);
                if (r == -EINTR || r == 0)
                        return 0;
                if (r < 0)
                        return r;
                r = len == 1 ? control(rn, msg[0]) : answer_apdu(rn, msg, len);
                if (r > 0)
                        return freeze(rn, wait_mask);
                if (r < 0)
                        return r;
        }
}

static int parse_run_options(int argc, char **argv, RunOptions *o) {
        enum {
                OPT_HOST = 256,
                OPT_TIMEOUT,
                OPT_VB,
                OPT_VA,
                OPT_FREEZE,
                OPT_DELAY,
                OPT_FAIL,
                OPT_LOG
        };
        static const struct option options[] = {
                { "port", required_argument, NULL, 'p' },
                { "host", required_argument, NULL, OPT_HOST },
                { "connect-timeout", required_argument, NULL, OPT_TIMEOUT },
                { "vanish-before", required_argument, NULL, OPT_VB },
                { "vanish-after", required_argument, NULL, OPT_VA },
                { "freeze-after", required_argument, NULL, OPT_FREEZE },
                { "delay-ms", required_argument, NULL, OPT_DELAY },
                { "fail-sw", required_argument, NULL, OPT_FAIL },
                { "log", required_argument, NULL, OPT_LOG },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r = 0;

        while (r == 0 && (c = getopt_long(argc, argv, "hp:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        run_usage(stdout);
                        return 1;
                case 'p':
                        r = vcard_parse_number(optarg, false, &o->port);
                        if (r == 0 && o->port > 65535)
                                r = -EINVAL;
                        break;
                case OPT_HOST:
                        o->host = optarg;
                        break;
                case OPT_TIMEOUT:
                        r = vcard_parse_number(optarg, true, &o->connect_timeout_s);
                        break;
                case OPT_VB:
                        r = vcard_parse_number(optarg, false, &o->faults.vanish_before);
                        break;
                case OPT_VA:
                        r = vcard_parse_number(optarg, false, &o->faults.vanish_after);
                        break;
                case OPT_FREEZE:
                        r = vcard_parse_number(optarg, false, &o->faults.freeze_after);
                        break;
                case OPT_DELAY:
                        r = vcard_parse_number(optarg, true, &o->faults.delay_ms);
                        break;
                case OPT_FAIL:
                        r = vcard_faults_add_fail_sw(&o->faults, optarg);
                        break;
                case OPT_LOG:
                        o->log = optarg;
                        break;
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        fprintf(stderr, "keyrenew-vcard run: bad value '%s'\n", optarg);
        }
        if (r == 0 && (optind != argc - 1 || o->port == 0)) {
                fprintf(stderr, "keyrenew-vcard run: need STATE and --port\n");
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        o->state = argv[optind];
        return 0;
}

static int run(Runner *rn) {
        struct sigaction sa = { .sa_handler = on_signal };
        sigset_t block, wait_mask;
        int r;

        /* SIGTERM and SIGINT are blocked except while waiting for vpcd:
         * pulling the card out never interrupts an APDU or a save. */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, &wait_mask);
        sigdelset(&wait_mask, SIGTERM);
        sigdelset(&wait_mask, SIGINT);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        r = vpcd_connect(rn->opt->host, rn->opt->port, rn->opt->connect_timeout_s * 1000, &rn->fd);
        if (r < 0) {
                fprintf(stderr, "keyrenew-vcard run: cannot reach vpcd at %s:%u: %s\n", rn->opt->host,
                        rn->opt->port, strerror(-r));
                return VCARD_EXIT_FAILURE;
        }
        r = serve(rn, &wait_mask);
        close(rn->fd);
        if (r == -ECONNABORTED)
                return VCARD_EXIT_VANISHED;
        if (r < 0) {
                fprintf(stderr, "keyrenew-vcard run: %s\n", strerror(-r));
                return VCARD_EXIT_FAILURE;
        }
        return 0;
}

int vcard_run_main(int argc, char **argv) {
        RunOptions opt = { .host = "127.0.0.1", .connect_timeout_s = 10 };
        _cleanup_(piv_card_freep) PivCard *card = NULL;
        _cleanup_fclose_ FILE *log = NULL;
        unsigned line = 0;
        Runner rn;
        int r;

        r = parse_run_options(argc, argv, &opt);
        if (r != 0)
                return r > 0 ? 0 : VCARD_EXIT_USAGE;
        r = card_state_load(opt.state, &card, &line);
        if (r < 0) {
                fprintf(stderr, "keyrenew-vcard run: cannot load %s (line %u): %s\n", opt.state, line,
                        strerror(-r));
                return VCARD_EXIT_FAILURE;
        }
        if (opt.log) {
                log = fopen(opt.log, "ae");
                if (!log) {
                        fprintf(stderr, "keyrenew-vcard run: cannot open %s: %m\n", opt.log);
                        return VCARD_EXIT_FAILURE;
                }
        }
        rn = (Runner){ .opt = &opt, .card = card, .fd = -1, .log = log };
        return run(&rn);
}
