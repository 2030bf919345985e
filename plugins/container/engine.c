/*
 * engine.c — the Docker Engine API client: where the socket is, and one small
 * function per API call (as docker-py's docker/api/container.py has them).
 *
 * HTTP is libcurl's over the engine's Unix socket (CURLOPT_UNIX_SOCKET_PATH);
 * JSON is jansson's. Each request gets its own easy handle in its own multi
 * handle, so concurrent steps share nothing, and a long request (the log
 * stream, a wait) is driven in 100 ms slices between which the caller's stop
 * function is asked whether to go on: that is how cancel and timeouts reach
 * a request that would otherwise block until the container ends.
 *
 * Paths carry no API version ("/containers/create", not "/v1.41/..."): the
 * engine then speaks its own current version. Docker and Podman both accept
 * that, and Docker refuses versions older than its minimum, which moves.
 * Every field used here exists in every version both engines still serve.
 *
 * Errors name the socket and how it was chosen, and carry the engine's own
 * message (its JSON {"message": ...}) verbatim.
 */
#include "container.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

/* Longest non-streaming reply kept (inspect answers are a few KiB). */
#define REPLY_MAX (4u << 20)
/* How long a request may take to connect, and to finish when it does not stream. */
#define CONNECT_TIMEOUT_S 10L
#define REQUEST_TIMEOUT_S 300L
/* How often a streaming request asks whether to stop. */
#define POLL_MS 100

#define START_ENGINE_SUGGESTION                                                                   \
    "start the engine (Docker: `systemctl start docker`; Podman: `podman system service "        \
    "--time=0 unix:///run/podman/podman.sock &`, or rootless `systemctl --user start "           \
    "podman.socket`), or set DOCKER_HOST=unix:///path/to/its.sock; docs/container-runner.md has " \
    "the details"

/* ======================================================================== */
/* Socket discovery                                                         */
/* ======================================================================== */

static int is_socket(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int ct_engine_find(ct_engine_t *eng, sh_error_t *err)
{
    const char *host = getenv("DOCKER_HOST");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char rootless[sizeof eng->socket];
    const char *candidates[3];
    size_t i, n = 0;

    eng->socket[0] = '\0';
    eng->source = "";
    if (host != NULL && host[0] != '\0') {
        if (strncmp(host, "unix://", 7) != 0 || host[7] != '/')
            return sh_err_set(err, "engine_unreachable",
                              "set DOCKER_HOST=unix:///path/to/the/engine.sock, or unset it to use "
                              "the default sockets",
                              "DOCKER_HOST=%.200s is not supported: the container runner talks "
                              "to the engine over a Unix socket (unix:///path)",
                              host);
        if (strlen(host + 7) >= sizeof eng->socket)
            return sh_err_set(err, "engine_unreachable", NULL,
                              "DOCKER_HOST names a socket path that is too long");
        snprintf(eng->socket, sizeof eng->socket, "%s", host + 7);
        eng->source = "DOCKER_HOST";
        return 0;
    }
    candidates[n++] = "/var/run/docker.sock";
    candidates[n++] = "/run/podman/podman.sock";
    rootless[0] = '\0';
    if (xdg != NULL && xdg[0] == '/' &&
        (size_t)snprintf(rootless, sizeof rootless, "%s/podman/podman.sock", xdg) < sizeof rootless)
        candidates[n++] = rootless;
    for (i = 0; i < n; i++) {
        if (is_socket(candidates[i])) {
            snprintf(eng->socket, sizeof eng->socket, "%s", candidates[i]);
            eng->source = "the default socket";
            return 0;
        }
    }
    return sh_err_set(err, "engine_unreachable", START_ENGINE_SUGGESTION,
                      "no container engine found: DOCKER_HOST is not set and none of "
                      "/var/run/docker.sock, /run/podman/podman.sock%s%s exists",
                      rootless[0] ? ", " : "", rootless);
}

/* ======================================================================== */
/* One request                                                              */
/* ======================================================================== */

typedef struct reply {
    CURL *handle;
    long status; /* HTTP status, once known */
    int headers_done;   /* the response's header block has ended */
    ct_ready_fn on_ready; /* streaming: called once, when a 2xx stream has begun */
    char *body;  /* the body (non-streaming, or any error body), NUL-terminated */
    size_t len, cap;
    int truncated;
    ct_data_fn on_data; /* streaming: 2xx bodies go here instead */
    void *arg;
    ct_sock_fn on_sock; /* hijacked streams: told the connection's socket (and -1 at its close) */
} reply_t;

/* libcurl opens the connection's socket through this when the caller wants to
 * know it (an exec's hijacked stream, ct_exec_start_tty): the socket is still
 * libcurl's, hm only writes the session's keystrokes to it once the engine has
 * answered, when HTTP on it is over. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    reply_t *rep = (reply_t *)clientp;
    curl_socket_t s;
    (void)purpose;
    s = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (s != CURL_SOCKET_BAD && rep->on_sock != NULL)
        rep->on_sock(rep->arg, (int)s);
    return s;
}

static int close_socket(void *clientp, curl_socket_t s)
{
    reply_t *rep = (reply_t *)clientp;
    if (rep->on_sock != NULL)
        rep->on_sock(rep->arg, -1); /* before the close: the number may be reused at once */
    return close((int)s);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    reply_t *rep = (reply_t *)userdata;
    size_t n = size * nmemb;
    if (rep->status == 0)
        curl_easy_getinfo(rep->handle, CURLINFO_RESPONSE_CODE, &rep->status);
    if (rep->on_data != NULL && rep->status >= 200 && rep->status < 300) {
        rep->on_data(rep->arg, (const uint8_t *)ptr, n);
        return n;
    }
    if (rep->len + n + 1 > REPLY_MAX) {
        rep->truncated = 1;
        return n; /* keep the start: enough for any message */
    }
    if (rep->len + n + 1 > rep->cap) {
        size_t cap = rep->cap ? rep->cap * 2 : 4096;
        char *p;
        while (cap < rep->len + n + 1)
            cap *= 2;
        p = (char *)realloc(rep->body, cap);
        if (p == NULL)
            return 0; /* makes curl fail with CURLE_WRITE_ERROR */
        rep->body = p;
        rep->cap = cap;
    }
    memcpy(rep->body + rep->len, ptr, n);
    rep->len += n;
    rep->body[rep->len] = '\0';
    return n;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    reply_t *rep = (reply_t *)userdata;
    size_t n = size * nmemb;
    /* the empty line that ends the header block */
    if ((n == 2 && line[0] == '\r' && line[1] == '\n') || (n == 1 && line[0] == '\n')) {
        curl_easy_getinfo(rep->handle, CURLINFO_RESPONSE_CODE, &rep->status);
        if (rep->status >= 200)
            rep->headers_done = 1;
    }
    return n;
}

/* Fills *err for a transfer that failed below HTTP: most often the engine is
 * not running (ENOENT / ECONNREFUSED) or the socket is not ours (EACCES). */
static int transport_error(const ct_engine_t *eng, CURL *h, CURLcode rc, const char *what,
                           sh_error_t *err)
{
    long os_errno = 0;
    char ebuf[128];
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    if (rc == CURLE_COULDNT_CONNECT && os_errno == EACCES)
        return sh_err_set(err, "engine_permission_denied",
                          "run hm as a user allowed to use that socket (for Docker: a member of "
                          "the `docker` group, then log in again), or use rootless Podman: "
                          "`systemctl --user start podman.socket` and "
                          "DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock",
                          "permission denied connecting to the container engine at unix://%s (%s)",
                          eng->socket, eng->source);
    if (rc == CURLE_COULDNT_CONNECT)
        return sh_err_set(err, "engine_unreachable", START_ENGINE_SUGGESTION,
                          "cannot reach the container engine at unix://%s (%s): %s", eng->socket,
                          eng->source,
                          os_errno ? sh_strerror((int)os_errno, ebuf, sizeof ebuf)
                                   : curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return sh_err_set(err, "engine_timeout",
                          "check that the engine is healthy (`podman info` or `docker info`)",
                          "the container engine at unix://%s did not answer in time while trying "
                          "to %s",
                          eng->socket, what);
    return sh_err_set(err, "engine_error", NULL,
                      "talking to the container engine at unix://%s failed while trying to %s: %s",
                      eng->socket, what, curl_easy_strerror(rc));
}

/* The engine's message from an error body: {"message": "..."}, else the
 * body's text itself (trimmed). */
static void engine_message(const reply_t *rep, char *out, size_t cap)
{
    json_error_t jerr;
    json_t *doc;
    const char *msg = NULL;
    out[0] = '\0';
    if (rep->body == NULL)
        return;
    doc = json_loadb(rep->body, rep->len, 0, &jerr);
    if (doc != NULL)
        msg = json_string_value(json_object_get(doc, "message"));
    snprintf(out, cap, "%s", msg ? msg : rep->body);
    json_decref(doc);
    {
        size_t n = strlen(out);
        while (n > 0 && isspace((unsigned char)out[n - 1]))
            out[--n] = '\0';
    }
}

/* The engine answered with an error status. */
static int http_error(const ct_engine_t *eng, const reply_t *rep, const char *what,
                      sh_error_t *err)
{
    char msg[1024];
    engine_message(rep, msg, sizeof msg);
    return sh_err_set(err, "engine_error", NULL,
                      "the container engine (unix://%s) could not %s: %s (HTTP %ld)", eng->socket,
                      what, msg[0] ? msg : "no message", rep->status);
}

/* Performs one request. `body` is JSON text or NULL; `stop` (may be NULL) is
 * asked every POLL_MS whether to abort; `timeout_s` 0 means none. Returns
 * CT_OK (any HTTP status: the caller reads rep->status), CT_STOPPED, or
 * SH_FAILED (transport error; *err set). `what` says what the request is for,
 * in error messages ("create the container"). */
static int perform(const ct_engine_t *eng, const char *method, const char *path, const char *body,
                   long timeout_s, reply_t *rep, ct_stop_fn stop, void *stop_arg,
                   const char *what, sh_error_t *err)
{
    char url[2048];
    struct curl_slist *headers = NULL;
    CURLM *multi = NULL;
    CURL *h = NULL;
    CURLMsg *msg;
    CURLcode result = CURLE_OK;
    int running = 1, queued, rc = CT_OK, stopped = 0, ready_called = 0;

    if ((size_t)snprintf(url, sizeof url, "http://localhost%s", path) >= sizeof url)
        return sh_err_set(err, "engine_error", NULL, "request path too long (%.100s...)", path);
    h = curl_easy_init();
    multi = curl_multi_init();
    if (h == NULL || multi == NULL) {
        rc = sh_err_set(err, "out_of_memory", NULL, "cannot create an HTTP request handle");
        goto out;
    }
    rep->handle = h;
    /* No signals: the host is multi-threaded and curl's SIGALRM would hit any thread. */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, eng->socket);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rep);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rep);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    if (timeout_s > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    /* Expect: 100-continue would add a round trip (or a 1 s stall) to large bodies. */
    headers = curl_slist_append(headers, "Expect:");
    if (body != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    if (headers == NULL) {
        rc = sh_err_set(err, "out_of_memory", NULL, "cannot build an HTTP request");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (rep->on_sock != NULL) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, rep);
        curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
        curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, rep);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L); /* a hijacked connection is never reused */
    }
    curl_multi_add_handle(multi, h);

    while (running) {
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        if (rep->on_ready != NULL && rep->headers_done && !ready_called) {
            ready_called = 1;
            if (rep->status >= 200 && rep->status < 300 && rep->on_ready(stop_arg, err) != 0) {
                rc = SH_FAILED; /* *err is the callback's */
                goto out;
            }
        }
        if (!running)
            break;
        if (stop != NULL && stop(stop_arg)) {
            stopped = 1;
            break;
        }
        curl_multi_poll(multi, NULL, 0, POLL_MS, NULL);
    }
    if (stopped) {
        rc = CT_STOPPED;
        goto out;
    }
    result = CURLE_RECV_ERROR;
    while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
            result = msg->data.result;
    }
    if (result != CURLE_OK) {
        rc = transport_error(eng, h, result, what, err);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rep->status);

out:
    if (multi != NULL && h != NULL)
        curl_multi_remove_handle(multi, h);
    if (h != NULL)
        curl_easy_cleanup(h);
    if (multi != NULL)
        curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    rep->handle = NULL;
    return rc;
}

static void reply_free(reply_t *rep)
{
    free(rep->body);
    memset(rep, 0, sizeof *rep);
}

/* The reply body as a JSON object, or NULL with *err set. */
static json_t *reply_json(const ct_engine_t *eng, const reply_t *rep, const char *what,
                          sh_error_t *err)
{
    json_error_t jerr;
    json_t *doc = rep->body ? json_loadb(rep->body, rep->len, 0, &jerr) : NULL;
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        sh_err_set(err, "engine_error", NULL,
                   "the container engine (unix://%s) sent an unreadable answer while trying to %s",
                   eng->socket, what);
        return NULL;
    }
    return doc;
}

/* The reply's JSON document when its status is ok1 or ok2 (0: only ok1): CT_OK
 * and *doc set, or the engine's error (http_error) or SH_FAILED with err set. */
static int json_reply(const ct_engine_t *eng, const reply_t *rep, long ok1, long ok2, const char *what,
                      sh_error_t *err, json_t **doc)
{
    if (rep->status != ok1 && (ok2 == 0 || rep->status != ok2))
        return http_error(eng, rep, what, err);
    *doc = reply_json(eng, rep, what, err);
    return *doc != NULL ? CT_OK : SH_FAILED;
}


/* Container ids are hex; anything else would change the request path. */
static int valid_id(const char *id)
{
    size_t i, n = strlen(id);
    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++)
        if (!isxdigit((unsigned char)id[i]))
            return 0;
    return 1;
}

/* ======================================================================== */
/* The API calls                                                            */
/* ======================================================================== */

/* An image id as engines write it: "sha256:" and hex, or bare hex (older
 * Podman). Anything else would not be safe to send back as an image name. */
static int valid_image_id(const char *id, size_t cap)
{
    const char *hex = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
    return strlen(id) < cap && strlen(hex) >= 12 && valid_id(hex);
}

int ct_image_inspect(const ct_engine_t *eng, const char *image, char *id, size_t cap,
                     sh_error_t *err)
{
    const char *what = "look up the step's image";
    char path[1200];
    reply_t rep = {0};
    json_t *doc = NULL;
    const char *got;
    int rc;
    id[0] = '\0';
    /* Docker's router takes the name as the rest of the path ("{name:.*}/json"),
     * slashes included; run.c has checked its characters. */
    snprintf(path, sizeof path, "/images/%s/json", image);
    rc = perform(eng, "GET", path, NULL, REQUEST_TIMEOUT_S, &rep, NULL, NULL, what, err);
    if (rc != CT_OK)
        goto out;
    if (rep.status == 404) {
        rc = CT_NOT_FOUND;
        goto out;
    }
    if ((rc = json_reply(eng, &rep, 200, 0, what, err, &doc)) != CT_OK)
        goto out;
    got = json_string_value(json_object_get(doc, "Id"));
    if (got == NULL || !valid_image_id(got, cap)) {
        rc = sh_err_set(err, "engine_error", NULL,
                        "the container engine (unix://%s) sent no valid id for image '%s'",
                        eng->socket, image);
        goto out;
    }
    snprintf(id, cap, "%s", got);
out:
    json_decref(doc);
    reply_free(&rep);
    return rc;
}

int ct_container_create(const ct_engine_t *eng, const char *name, const json_t *body, char id[72],
                        int *uncertain, sh_error_t *err)
{
    const char *what = "create the step's container";
    char path[512];
    char *text = json_dumps(body, JSON_COMPACT);
    reply_t rep = {0};
    json_t *doc = NULL, *warnings;
    const char *got;
    int rc;

    if (text == NULL)
        return sh_err_set(err, "out_of_memory", NULL, "out of memory encoding the container spec");
    snprintf(path, sizeof path, "/containers/create?name=%s", name);
    *uncertain = 0;
    rc = perform(eng, "POST", path, text, REQUEST_TIMEOUT_S, &rep, NULL, NULL, what, err);
    free(text);
    if (rc != CT_OK) {
        /* never connected: nothing was created; anything else: maybe it was */
        *uncertain = strcmp(err->code, "engine_unreachable") != 0 &&
                     strcmp(err->code, "engine_permission_denied") != 0 &&
                     strcmp(err->code, "out_of_memory") != 0;
        goto out;
    }
    if ((rc = json_reply(eng, &rep, 201, 200, what, err, &doc)) != CT_OK) {
        *uncertain = rep.status == 201 || rep.status == 200; /* created, but its reply unreadable */
        goto out;
    }
    got = json_string_value(json_object_get(doc, "Id"));
    if (got == NULL || !valid_id(got)) {
        *uncertain = 1;
        rc = sh_err_set(err, "engine_error", NULL,
                        "the container engine (unix://%s) created a container but sent no valid "
                        "id",
                        eng->socket);
        goto out;
    }
    snprintf(id, 72, "%s", got);
    warnings = json_object_get(doc, "Warnings");
    if (json_is_array(warnings) && json_array_size(warnings) > 0) {
        /* e.g. a memory limit the kernel cannot enforce: worth knowing, not fatal */
        size_t i;
        json_t *w;
        json_array_foreach(warnings, i, w)
        {
            if (json_is_string(w) && eng->ctx != NULL)
                sh_log(eng->ctx, HM_LOG_WARNING, "container engine: %s", json_string_value(w));
        }
    }
out:
    json_decref(doc);
    reply_free(&rep);
    return rc;
}

int ct_container_start(const ct_engine_t *eng, const char *id, sh_error_t *err)
{
    char path[128];
    reply_t rep = {0};
    int rc;
    snprintf(path, sizeof path, "/containers/%s/start", id);
    rc = perform(eng, "POST", path, NULL, REQUEST_TIMEOUT_S, &rep, NULL, NULL,
                 "start the step's container", err);
    /* 304: already started, which is what we wanted */
    if (rc == CT_OK && rep.status != 204 && rep.status != 304 && rep.status != 200)
        rc = http_error(eng, &rep, "start the step's container", err);
    reply_free(&rep);
    return rc;
}

int ct_container_attach(const ct_engine_t *eng, const char *id, ct_ready_fn on_ready,
                        ct_data_fn on_data, ct_stop_fn stop, void *arg, sh_error_t *err)
{
    const char *what = "attach to the step's container";
    char path[160];
    reply_t rep = {0};
    int rc;
    rep.on_data = on_data;
    rep.on_ready = on_ready;
    rep.arg = arg;
    /* No "Upgrade: tcp": the engine then answers 200 and streams until the
     * container ends, which is a plain HTTP body to libcurl. */
    snprintf(path, sizeof path, "/containers/%s/attach?stream=1&stdout=1&stderr=1", id);
    rc = perform(eng, "POST", path, NULL, 0, &rep, stop, arg, what, err);
    if (rc == CT_OK && (rep.status < 200 || rep.status >= 300))
        rc = http_error(eng, &rep, what, err);
    reply_free(&rep);
    return rc;
}

int ct_container_wait(const ct_engine_t *eng, const char *id, ct_stop_fn stop, void *arg,
                      int64_t *status, sh_error_t *err)
{
    const char *what = "wait for the step's container";
    char path[128];
    reply_t rep = {0};
    json_t *doc = NULL, *code;
    int rc;
    snprintf(path, sizeof path, "/containers/%s/wait", id);
    rc = perform(eng, "POST", path, NULL, 0, &rep, stop, arg, what, err);
    if (rc != CT_OK)
        goto out;
    if ((rc = json_reply(eng, &rep, 200, 0, what, err, &doc)) != CT_OK)
        goto out;
    code = json_object_get(doc, "StatusCode");
    if (!json_is_integer(code)) {
        rc = sh_err_set(err, "engine_error", NULL,
                        "the container engine (unix://%s) sent no exit status for the step's "
                        "container",
                        eng->socket);
        goto out;
    }
    *status = (int64_t)json_integer_value(code);
out:
    json_decref(doc);
    reply_free(&rep);
    return rc;
}

int ct_container_oom_killed(const ct_engine_t *eng, const char *id, int *oom_killed,
                            sh_error_t *err)
{
    const char *what = "inspect the step's container";
    char path[128];
    reply_t rep = {0};
    json_t *doc = NULL;
    int rc;
    *oom_killed = 0;
    snprintf(path, sizeof path, "/containers/%s/json", id);
    rc = perform(eng, "GET", path, NULL, REQUEST_TIMEOUT_S, &rep, NULL, NULL, what, err);
    if (rc != CT_OK)
        goto out;
    if ((rc = json_reply(eng, &rep, 200, 0, what, err, &doc)) != CT_OK)
        goto out;
    *oom_killed = json_is_true(json_object_get(json_object_get(doc, "State"), "OOMKilled"));
out:
    json_decref(doc);
    reply_free(&rep);
    return rc;
}

int ct_container_kill(const ct_engine_t *eng, const char *id, sh_error_t *err)
{
    char path[128];
    reply_t rep = {0};
    int rc;
    snprintf(path, sizeof path, "/containers/%s/kill", id);
    rc = perform(eng, "POST", path, NULL, REQUEST_TIMEOUT_S, &rep, NULL, NULL,
                 "kill the step's container", err);
    /* 404: gone; 409: no longer running. Either way nothing is left to kill. */
    if (rc == CT_OK && rep.status != 204 && rep.status != 200 && rep.status != 404 &&
        rep.status != 409)
        rc = http_error(eng, &rep, "kill the step's container", err);
    reply_free(&rep);
    return rc;
}

/* ---- exec with a TTY (sessions, ABI 1.1) -------------------------------- */

int ct_exec_create(const ct_engine_t *eng, const char *container, const json_t *body, char id[72],
                   sh_error_t *err)
{
    const char *what = "create the session's exec";
    char path[160];
    char *text = json_dumps(body, JSON_COMPACT);
    reply_t rep = {0};
    json_t *doc = NULL;
    const char *got;
    int rc;
    if (text == NULL)
        return sh_err_set(err, "out_of_memory", NULL, "out of memory encoding the exec spec");
    snprintf(path, sizeof path, "/containers/%s/exec", container);
    rc = perform(eng, "POST", path, text, REQUEST_TIMEOUT_S, &rep, NULL, NULL, what, err);
    free(text);
    if (rc == CT_OK)
        rc = json_reply(eng, &rep, 201, 200, what, err, &doc);
    if (rc == CT_OK) {
        got = json_string_value(json_object_get(doc, "Id"));
        if (got == NULL || !valid_id(got))
            rc = sh_err_set(err, "engine_error", NULL, "the container engine (unix://%s) sent no valid exec id",
                            eng->socket);
        else
            snprintf(id, 72, "%s", got);
    }
    json_decref(doc);
    reply_free(&rep);
    return rc;
}

int ct_exec_start_tty(const ct_engine_t *eng, const char *exec_id, ct_sock_fn on_sock, ct_data_fn on_data,
                      ct_ready_fn on_ready, ct_stop_fn stop, void *arg, sh_error_t *err)
{
    const char *what = "start the session's exec";
    char path[160];
    reply_t rep = {0};
    int rc;
    rep.on_data = on_data;
    rep.on_sock = on_sock;
    rep.on_ready = on_ready;
    rep.arg = arg;
    /* As attach: no "Upgrade: tcp", so the engine answers 200 and the stream is a
     * plain body to libcurl; with Tty it is raw, not multiplexed. The engine
     * hijacks the connection once it answered, and reads the exec's stdin from it. */
    snprintf(path, sizeof path, "/exec/%s/start", exec_id);
    rc = perform(eng, "POST", path, "{\"Detach\":false,\"Tty\":true}", 0, &rep, stop, arg, what, err);
    if (rc == CT_OK && (rep.status < 200 || rep.status >= 300))
        rc = http_error(eng, &rep, what, err);
    reply_free(&rep);
    return rc;
}

int ct_exec_resize(const ct_engine_t *eng, const char *exec_id, unsigned rows, unsigned cols, sh_error_t *err)
{
    char path[200];
    reply_t rep = {0};
    int rc;
    snprintf(path, sizeof path, "/exec/%s/resize?h=%u&w=%u", exec_id, rows, cols);
    rc = perform(eng, "POST", path, NULL, REQUEST_TIMEOUT_S, &rep, NULL, NULL, "resize the session's terminal", err);
    if (rc == CT_OK && (rep.status < 200 || rep.status >= 300))
        rc = http_error(eng, &rep, "resize the session's terminal", err);
    reply_free(&rep);
    return rc;
}

int ct_exec_exit_code(const ct_engine_t *eng, const char *exec_id, int64_t *code, sh_error_t *err)
{
    const char *what = "inspect the session's exec";
    char path[160];
    reply_t rep = {0};
    json_t *doc = NULL, *v;
    int rc;
    snprintf(path, sizeof path, "/exec/%s/json", exec_id);
    rc = perform(eng, "GET", path, NULL, REQUEST_TIMEOUT_S, &rep, NULL, NULL, what, err);
    if (rc == CT_OK)
        rc = json_reply(eng, &rep, 200, 0, what, err, &doc);
    if (rc == CT_OK) {
        v = json_object_get(doc, "ExitCode");
        *code = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
    }
    json_decref(doc);
    reply_free(&rep);
    return rc;
}

int ct_container_remove(const ct_engine_t *eng, const char *id, sh_error_t *err)
{
    char path[128];
    reply_t rep = {0};
    int rc;
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
    rc = perform(eng, "DELETE", path, NULL, REQUEST_TIMEOUT_S, &rep, NULL, NULL,
                 "remove the step's container", err);
    if (rc == CT_OK && rep.status != 204 && rep.status != 200 && rep.status != 404)
        rc = http_error(eng, &rep, "remove the step's container", err);
    reply_free(&rep);
    return rc;
}
