/* Host memory still available to this process (see include/simcse/host_memory.h).
 *
 * The cgroup is found from /proc/self/cgroup ("0::/path" for v2, "N:...memory...:/path"
 * for v1) under the usual mounts (/sys/fs/cgroup, /sys/fs/cgroup/memory). Inside a
 * container the listed path often does not exist under the mount (the container sees its
 * own cgroup as the root), so every level from the listed path up to the mount's root is
 * read, and the tightest one wins. Usage counts the page cache, which the kernel drops
 * before it kills anything, so the inactive file pages (memory.stat) are taken off it. */
#include "simcse/host_memory.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first number in a file ("max" and unreadable files: UINT64_MAX). */
static uint64_t read_number(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return UINT64_MAX;
    unsigned long long v;
    int ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    return ok ? (uint64_t)v : UINT64_MAX;
}

/* A key's value in a memory.stat file (0 when absent). */
static uint64_t stat_value(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char name[128];
    unsigned long long v;
    uint64_t res = 0;
    while (fscanf(f, "%127s %llu", name, &v) == 2)
        if (!strcmp(name, key)) {
            res = (uint64_t)v;
            break;
        }
    fclose(f);
    return res;
}

/* The tightest (limit - unreclaimable usage) from mount+path up to mount; UINT64_MAX: no limit. */
static uint64_t cgroup_room(const char *mount, const char *path, const char *limit_name, const char *usage_name,
                            const char *inactive_key) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s%s", mount, strcmp(path, "/") ? path : "");
    uint64_t best = UINT64_MAX;
    size_t root = strlen(mount);
    for (;;) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, limit_name);
        uint64_t limit = read_number(p);
        /* v1 reports "no limit" as a huge page-aligned number */
        if (limit != UINT64_MAX && limit < ((uint64_t)1 << 60)) {
            snprintf(p, sizeof p, "%s/%s", dir, usage_name);
            uint64_t usage = read_number(p);
            if (usage == UINT64_MAX) usage = 0;
            snprintf(p, sizeof p, "%s/memory.stat", dir);
            uint64_t inactive = stat_value(p, inactive_key);
            usage = usage > inactive ? usage - inactive : 0;
            uint64_t room = limit > usage ? limit - usage : 0;
            if (room < best) best = room;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < root) break;
        *slash = 0;
    }
    return best;
}

size_t simcse_host_memory_available(const char **source) {
    uint64_t best = UINT64_MAX;
    *source = "unknown";
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                best = (uint64_t)kb * 1024;
                *source = "MemAvailable";
                break;
            }
        fclose(f);
    }
    f = fopen("/proc/self/cgroup", "r");
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2) continue;
            *c1 = *c2 = 0;
            const char *controllers = c1 + 1, *path = c2 + 1;
            uint64_t room = UINT64_MAX;
            const char *what = NULL;
            if (!strcmp(line, "0") && !*controllers) {
                room = cgroup_room("/sys/fs/cgroup", path, "memory.max", "memory.current", "inactive_file");
                if (room == UINT64_MAX)
                    room = cgroup_room("/sys/fs/cgroup/unified", path, "memory.max", "memory.current", "inactive_file");
                what = "cgroup memory.max";
            } else {
                char list[256];
                snprintf(list, sizeof list, ",%s,", controllers);
                if (!strstr(list, ",memory,")) continue;
                room = cgroup_room("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", "memory.usage_in_bytes",
                                   "total_inactive_file");
                what = "cgroup memory.limit_in_bytes";
            }
            if (room < best) {
                best = room;
                *source = what;
            }
        }
        fclose(f);
    }
    if (best == UINT64_MAX) return 0;
    return best > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)best;
}
