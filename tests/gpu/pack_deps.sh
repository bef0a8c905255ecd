#!/usr/bin/env bash
# Copies the build's third-party headers and shared libraries (Criterion, cJSON, utf8proc,
# PCRE2, libcsv, zlib, and what their libraries load) from THIS machine into
# build/gpu-deps/{include,lib}, for a GPU machine that has the CUDA toolkit but not these
# packages (see tests/gpu/run_gpu_checks.sh, which uses only the libraries the GPU machine
# lacks). Reads the local installation only; fetches nothing. Idempotent (rebuilds the folder).
set -eu
cd "$(dirname "$0")/../.."
DST=build/gpu-deps
rm -rf "$DST"
mkdir -p "$DST/include" "$DST/lib"

inc_dir=$(echo '#include <criterion/criterion.h>' | cc -E -x c - 2>/dev/null |
    sed -n 's/^# [0-9]* "\(.*\)\/criterion\/criterion.h".*/\1/p' | head -n 1)
[ -n "$inc_dir" ] || { echo "pack_deps: Criterion headers not found here" >&2; exit 1; }
for h in criterion cjson csv.h pcre2.h utf8proc.h zlib.h zconf.h; do
    if [ -e "$inc_dir/$h" ]; then cp -RL "$inc_dir/$h" "$DST/include/"; else echo "pack_deps: no $inc_dir/$h" >&2; fi
done
# zconf.h may live in a multiarch folder
[ -e "$DST/include/zconf.h" ] || cp -L "$(echo '#include <zconf.h>' | cc -E -x c - |
    sed -n 's/^# [0-9]* "\(.*zconf.h\)".*/\1/p' | head -n 1)" "$DST/include/" 2>/dev/null || true

# link-time names (lib*.so) of the libraries the Makefile names
for l in criterion cjson utf8proc pcre2-8 z csv; do
    f=$(cc -print-file-name="lib$l.so")
    if [ -e "$f" ]; then cp -L "$f" "$DST/lib/lib$l.so"; else echo "pack_deps: lib$l.so not found" >&2; fi
done
# run-time names (sonames) of everything they load, except the C library family
probe=$(mktemp -d)
printf 'int main(void){return 0;}\n' >"$probe/p.c"
cc "$probe/p.c" -o "$probe/p" -Wl,--no-as-needed -L"$DST/lib" -lcriterion -lcjson -lutf8proc -lpcre2-8 -lz -lcsv
ldd "$probe/p" | awk '/=> \// {print $1, $3}' | while read -r so path; do
    case "$so" in
    libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libresolv.so* | ld-linux*) continue ;;
    esac
    cp -L "$path" "$DST/lib/$so"
done
rm -rf "$probe"
du -sh "$DST"
echo "pack_deps: carry build/gpu-deps to the GPU machine and run tests/gpu/run_gpu_checks.sh there"
