/* ll_int.h - private to landlock/: the plan layout and the kernel constants
 * newer than the installed <linux/landlock.h> (Debian 12 ships the 6.1 UAPI
 * header, which stops at ABI 2). Values are the kernel UAPI ones. */
#ifndef OPENSHELL_LL_INT_H
#define OPENSHELL_LL_INT_H

#include <linux/landlock.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "landlock/landlock.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)  /* ABI 3, Linux 6.2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5, Linux 6.10 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6, Linux 6.12 */
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6, Linux 6.12 */
#endif
#ifndef LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON
#define LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (1U << 1) /* ABI 7, Linux 6.15 */
#endif

/* struct landlock_ruleset_attr as of ABI 6. The installed header's struct has
 * only handled_access_fs, so this local copy is used; the size passed to the
 * kernel is the one of the running ABI (ll_ruleset_attr_size). */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4; always 0 here */
	uint64_t scoped;             /* ABI 6 */
};

/* ABI 1 rights: EXECUTE .. MAKE_SYM. */
#define LL_ACCESS_FS_V1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)
/* Rights that apply to a file (anything but a directory). */
#define LL_ACCESS_FILE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
			LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
			LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define LL_ACCESS_READ_ONLY (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | \
			     LANDLOCK_ACCESS_FS_READ_DIR)

enum ll_grant { LL_GRANT_RO = 0, LL_GRANT_RW };
enum ll_source { LL_SRC_POLICY = 0, LL_SRC_WORKDIR, LL_SRC_SUPERVISOR, LL_SRC_BASELINE };

struct ll_entry {
	char *path;
	enum ll_grant grant;
	enum ll_source source;
	bool applied;            /* a rule was added for it */
	bool is_dir;
	uint64_t access;         /* rights of the rule when applied */
	const char *skip_reason; /* static text when not applied */
};

struct landlock_plan {
	int ruleset_fd;          /* -1: nothing is enforced (degraded best_effort) */
	int abi;                 /* probe result; <= 0 when unavailable */
	bool hard;
	uint64_t handled_fs;
	uint64_t scoped;
	uint32_t restrict_flags;
	const char *unavailable; /* static reason when ruleset_fd < 0 */
	struct ll_entry *entries;
	size_t n_entries;
	char **degraded;         /* warning texts about missing kernel features */
	size_t n_degraded;
};

struct ll_inputs {
	const struct policy *p;
	const char *workdir;
	const char *const *extra_ro;
	const char *const *extra_rw;
	const struct landlock_event_sink *sink;
};

/* landlock_prepare() with the ABI given instead of probed (abi <= 0: Landlock
 * unavailable with that -errno). The unit test uses it to exercise old
 * kernels; abi must not exceed the running kernel's. */
int ll_prepare_abi(const struct ll_inputs *in, int abi, struct landlock_plan **out, char *err,
		   size_t errlen);

uint64_t ll_handled_fs_for_abi(int abi);
const char *ll_probe_error_text(int neg_errno);
const char *ll_source_name(enum ll_source s);

#endif
