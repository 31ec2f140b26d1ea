/*
 * Judge: NATS Streaming through Debian's libnats (the C client's streaming API).
 *
 *   build/stan_judge --url nats://127.0.0.1:4222 --client ID --channel foo
 *       [--cluster test-cluster] [--pub N] [--data 'msg-{i}'] [--sub N]
 *       [--start first|new|last|seq:N] [--durable NAME] [--deadline MS]
 *
 * Connects with stanConnection_Connect, publishes N messages with
 * stanConnection_Publish (each waits for its PubAck), then, with --sub N,
 * subscribes (DeliverAllAvailable unless --start says otherwise), receives N
 * messages or stops at --deadline, and closes the connection.
 * Prints one JSON object per line, as the node and stan.py judges do:
 * connected, ack {i, error}, ready, msg {seq, subject, data, redelivered,
 * timestamp}, deadline, done {received, reason}, closed {error},
 * error {stage, error, status}. Exit status: 0 when no error event was
 * printed, 1 otherwise, 2 when a hard deadline (--deadline + 5 s) fired.
 *
 * Build: cc -DNATS_HAS_STREAMING -o build/stan_judge tests/c/stan_judge.c -lnats
 */
#include <nats/nats.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int received = 0;
static int want = 0;
static int errors = 0;

/* Writes s as a JSON string (with quotes) to f. */
static void json_str(FILE *f, const char *s, int len)
{
    fputc('"', f);
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}

static void emit_error(const char *stage, natsStatus s)
{
    natsStatus last = NATS_OK;
    const char *text = nats_GetLastError(&last);
    if (text == NULL || text[0] == '\0') text = natsStatus_GetText(s);
    pthread_mutex_lock(&out_mu);
    errors++;
    printf("{\"event\": \"error\", \"stage\": \"%s\", \"error\": ", stage);
    json_str(stdout, text, (int) strlen(text));
    printf(", \"status\": \"%s\"}\n", natsStatus_GetText(s));
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
}

static void emit_line(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&out_mu);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
}

static void on_msg(stanConnection *sc, stanSubscription *sub, const char *channel,
                   stanMsg *msg, void *closure)
{
    (void) sc; (void) sub; (void) closure;
    pthread_mutex_lock(&out_mu);
    received++;
    printf("{\"event\": \"msg\", \"seq\": %llu, \"subject\": ",
           (unsigned long long) stanMsg_GetSequence(msg));
    json_str(stdout, channel, (int) strlen(channel));
    printf(", \"data\": ");
    json_str(stdout, stanMsg_GetData(msg), stanMsg_GetDataLength(msg));
    printf(", \"redelivered\": %s, \"timestamp\": %lld}\n",
           stanMsg_IsRedelivered(msg) ? "true" : "false",
           (long long) stanMsg_GetTimestamp(msg));
    fflush(stdout);
    if (want > 0 && received >= want) pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&out_mu);
    stanMsg_Destroy(msg);
}

static void on_conn_lost(stanConnection *sc, const char *text, void *closure)
{
    (void) sc; (void) closure;
    pthread_mutex_lock(&out_mu);
    printf("{\"event\": \"connection-lost\", \"error\": ");
    json_str(stdout, text ? text : "", text ? (int) strlen(text) : 0);
    printf("}\n");
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
}

static void on_alarm(int sig)
{
    (void) sig;
    static const char line[] = "{\"event\": \"hard-timeout\"}\n";
    ssize_t w = write(STDOUT_FILENO, line, sizeof(line) - 1);
    (void) w;
    _exit(2);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: stan_judge --client ID [--url URL] [--cluster CID] [--channel CH]\n"
            "                  [--pub N] [--data 'msg-{i}'] [--sub N]\n"
            "                  [--start first|new|last|seq:N] [--durable NAME] [--deadline MS]\n");
    exit(64);
}

/* data template with {i} replaced by i */
static void render(char *out, size_t cap, const char *tmpl, int i)
{
    const char *p = strstr(tmpl, "{i}");
    if (p == NULL) {
        snprintf(out, cap, "%s", tmpl);
    } else {
        snprintf(out, cap, "%.*s%d%s", (int) (p - tmpl), tmpl, i, p + 3);
    }
}

int main(int argc, char **argv)
{
    const char *url = "nats://127.0.0.1:4222";
    const char *cluster = "test-cluster";
    const char *client = NULL;
    const char *channel = NULL;
    const char *data = "msg-{i}";
    const char *start = "first";
    const char *durable = NULL;
    int pub = 0;
    long deadline_ms = 10000;

    static struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"cluster", required_argument, NULL, 'c'},
        {"client", required_argument, NULL, 'i'},
        {"channel", required_argument, NULL, 'n'},
        {"pub", required_argument, NULL, 'p'},
        {"data", required_argument, NULL, 'd'},
        {"sub", required_argument, NULL, 's'},
        {"start", required_argument, NULL, 'S'},
        {"durable", required_argument, NULL, 'D'},
        {"deadline", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'c': cluster = optarg; break;
        case 'i': client = optarg; break;
        case 'n': channel = optarg; break;
        case 'p': pub = atoi(optarg); break;
        case 'd': data = optarg; break;
        case 's': want = atoi(optarg); break;
        case 'S': start = optarg; break;
        case 'D': durable = optarg; break;
        case 't': deadline_ms = atol(optarg); break;
        default: usage();
        }
    }
    if (client == NULL || ((pub > 0 || want > 0) && channel == NULL)) usage();

    signal(SIGALRM, on_alarm);
    alarm((unsigned) ((deadline_ms + 5000 + 999) / 1000));

    stanConnOptions *copts = NULL;
    stanConnection *sc = NULL;
    stanSubOptions *sopts = NULL;
    stanSubscription *sub = NULL;
    const char *reason = "published";

    natsStatus s = stanConnOptions_Create(&copts);
    if (s == NATS_OK) s = stanConnOptions_SetURL(copts, url);
    if (s == NATS_OK) s = stanConnOptions_SetConnectionLostHandler(copts, on_conn_lost, NULL);
    if (s == NATS_OK) s = stanConnection_Connect(&sc, cluster, client, copts);
    if (s != NATS_OK) {
        emit_error("connect", s);
        goto out;
    }
    emit_line("{\"event\": \"connected\", \"client\": \"%s\", \"cluster\": \"%s\"}", client, cluster);

    for (int i = 1; i <= pub; i++) {
        char buf[4096];
        render(buf, sizeof(buf), data, i);
        s = stanConnection_Publish(sc, channel, buf, (int) strlen(buf));
        if (s == NATS_OK) {
            emit_line("{\"event\": \"ack\", \"i\": %d, \"error\": null}", i);
        } else {
            natsStatus last = NATS_OK;
            const char *text = nats_GetLastError(&last);
            if (text == NULL || text[0] == '\0') text = natsStatus_GetText(s);
            pthread_mutex_lock(&out_mu);
            errors++;
            printf("{\"event\": \"ack\", \"i\": %d, \"error\": ", i);
            json_str(stdout, text, (int) strlen(text));
            printf("}\n");
            fflush(stdout);
            pthread_mutex_unlock(&out_mu);
        }
    }
    if (pub > 0) emit_line("{\"event\": \"published\", \"count\": %d}", pub);

    if (want > 0) {
        s = stanSubOptions_Create(&sopts);
        if (s == NATS_OK) {
            if (strcmp(start, "first") == 0 || strcmp(start, "all") == 0)
                s = stanSubOptions_DeliverAllAvailable(sopts);
            else if (strcmp(start, "last") == 0)
                s = stanSubOptions_StartWithLastReceived(sopts);
            else if (strncmp(start, "seq:", 4) == 0)
                s = stanSubOptions_StartAtSequence(sopts, strtoull(start + 4, NULL, 10));
            else if (strcmp(start, "new") != 0)
                usage();
        }
        if (s == NATS_OK && durable != NULL) s = stanSubOptions_SetDurableName(sopts, durable);
        if (s == NATS_OK) s = stanConnection_Subscribe(&sub, sc, channel, on_msg, NULL, sopts);
        if (s != NATS_OK) {
            emit_error("subscribe", s);
            reason = "error";
        } else {
            emit_line("{\"event\": \"ready\", \"channel\": \"%s\"}", channel);
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += deadline_ms / 1000;
            until.tv_nsec += (deadline_ms % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            reason = "count";
            pthread_mutex_lock(&out_mu);
            while (received < want) {
                if (pthread_cond_timedwait(&done_cv, &out_mu, &until) == ETIMEDOUT) {
                    if (received < want) reason = "deadline";
                    break;
                }
            }
            pthread_mutex_unlock(&out_mu);
            if (strcmp(reason, "deadline") == 0)
                emit_line("{\"event\": \"deadline\", \"after_ms\": %ld}", deadline_ms);
        }
    }
    pthread_mutex_lock(&out_mu);
    int got = received;
    pthread_mutex_unlock(&out_mu);
    emit_line("{\"event\": \"done\", \"received\": %d, \"reason\": \"%s\"}", got, reason);

    s = stanConnection_Close(sc);
    if (s == NATS_OK) emit_line("{\"event\": \"closed\", \"error\": null}");
    else emit_error("close", s);

out:
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(sopts);
    stanConnection_Destroy(sc);
    stanConnOptions_Destroy(copts);
    nats_Close();
    return errors ? 1 : 0;
}
