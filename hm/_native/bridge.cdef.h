/* cffi cdef of the host bridge: the parts of hm_plugin.h the host touches, the
 * extern "Python" host-API callbacks and the bridge's C helpers. In API mode cffi
 * compiles these against the real header, so a mismatch fails the build. */
typedef int32_t hm_status_t;
typedef uint64_t hm_call_t;
typedef struct hm_abi_header { uint32_t struct_size; uint32_t abi_major; uint32_t abi_minor; } hm_abi_header_t;
typedef struct hm_buf { uint8_t *ptr; size_t len; } hm_buf_t;
typedef struct hm_plugin_vtable { hm_abi_header_t header; ...; } hm_plugin_vtable_t;
typedef struct hm_host_api { hm_abi_header_t header; ...; } hm_host_api_t;

/* Each takes the slot of the table it was called through first. */
extern "Python" hm_status_t hm_py_log(int32_t, hm_call_t, int32_t, const uint8_t *, size_t);
extern "Python" hm_status_t hm_py_kv_get(int32_t, hm_call_t, int32_t, const uint8_t *, size_t, hm_buf_t *);
extern "Python" hm_status_t hm_py_kv_set(int32_t, hm_call_t, int32_t, const uint8_t *, size_t, const uint8_t *, size_t);
extern "Python" hm_status_t hm_py_emit_event(int32_t, hm_call_t, const uint8_t *, size_t);
extern "Python" hm_status_t hm_py_emit_step_log(int32_t, hm_call_t, int32_t, const uint8_t *, size_t);
extern "Python" hm_status_t hm_py_should_cancel(int32_t, hm_call_t);
extern "Python" hm_status_t hm_py_write_stdout(int32_t, hm_call_t, const uint8_t *, size_t);
extern "Python" hm_status_t hm_py_write_stderr(int32_t, hm_call_t, const uint8_t *, size_t);
extern "Python" hm_status_t hm_py_archive_read(int32_t, hm_call_t, uint64_t, uint8_t *, size_t, size_t *);
extern "Python" hm_status_t hm_py_archive_total_size(int32_t, hm_call_t, uint64_t *);
extern "Python" hm_status_t hm_py_fs_read_config(int32_t, hm_call_t, const uint8_t *, size_t, hm_buf_t *);
extern "Python" hm_status_t hm_py_kv_compare_and_swap(int32_t, hm_call_t, int32_t, const uint8_t *, size_t, int32_t,
                                                      const uint8_t *, size_t, const uint8_t *, size_t);
extern "Python" hm_status_t hm_py_session_output(int32_t, hm_call_t, const uint8_t *, size_t);

#define HM_BRIDGE_OP_EXECUTE_STEP 1
#define HM_BRIDGE_OP_ON_HOOK_EVENT 2
#define HM_BRIDGE_OP_RUN_SUBCOMMAND 3
#define HM_BRIDGE_OP_SESSION_OPEN 4
#define HM_BRIDGE_SESSION_WRITE 1
#define HM_BRIDGE_SESSION_RESIZE 2
#define HM_BRIDGE_SESSION_SIGNAL 3
#define HM_BRIDGE_SESSION_CLOSE 4

int hm_bridge_slots(void);
const hm_host_api_t *hm_bridge_host_api(int slot);
int hm_bridge_open(const char *path, void **out_entry, char *err, size_t err_cap);
const hm_plugin_vtable_t *hm_bridge_load(void *entry, int slot, const char *label, void **out_instance);
uint32_t hm_bridge_vtable_min_size(void);
int hm_bridge_vtable_missing(const hm_plugin_vtable_t *vt);
int hm_bridge_vtable_offers(const hm_plugin_vtable_t *vt);
hm_status_t hm_bridge_manifest(const hm_plugin_vtable_t *vt, void *inst, hm_call_t call, hm_buf_t *out,
                               const char *label);
size_t hm_bridge_invoke(const hm_plugin_vtable_t *vt, void *inst, int slot, int op, hm_call_t call,
                        const char *in, size_t in_len, char *scratch, size_t cap,
                        hm_status_t *status, hm_buf_t *big, const char *label, const char *step);
hm_status_t hm_bridge_session_ctl(const hm_plugin_vtable_t *vt, void *inst, int what, hm_call_t session,
                                  const char *data, size_t len, int a, int b);
void hm_bridge_release(const hm_plugin_vtable_t *vt, void *inst, hm_buf_t *out);
void hm_bridge_destroy(const hm_plugin_vtable_t *vt, void *inst);
int hm_bridge_host_copy(const char *data, size_t len, hm_buf_t *out);
void hm_bridge_noop(const char *in, size_t in_len, hm_buf_t *out);

int hm_bridge_install_last_words(void);
void hm_bridge_set_last_words(const char *head, const char *middle, const char *tail);
void hm_bridge_exit_expected(void);
void hm_bridge_note_plugin(int slot, const char *label, const char *path);
int hm_bridge_open_beneath(const char *base, const char *rel);
