#!/bin/sh
# Build the libFuzzer targets of tests/fuzz/ with clang and ASan+UBSan, and optionally
# run them. From the repository root:
#   tests/fuzz/build.sh               build build/fuzz/fuzz_proc, fuzz_image, fuzz_blob,
#                                     fuzz_helper, fuzz_pidreq, fuzz_rpc, fuzz_pserver
#   tests/fuzz/build.sh --smoke       build, then run each target for 20 seconds
#   tests/fuzz/build.sh --run SECS [TARGET...]
#                                     build, then run each target (or those named) for
#                                     SECS seconds
#   tests/fuzz/build.sh --no-build --run SECS TARGET...
#                                     run without building (tests/checks/fuzz_*.py)
# Seeds: the committed corpus tests/fuzz/corpus/<target>/ (real dump images, captured
# /proc files, generated requests: tests/fuzz/README.md), plus what the build generates in
# build/fuzz/seeds-<target>/ (the /proc fixtures, one small valid message of each image
# kind, blobs, helper requests). New inputs found go to build/fuzz/corpus-<target>/;
# crashes to build/fuzz/crash-<target>-*. Exit status is non-zero if a target finds a
# crash, a leak, an input slower than 10 s or over 1 GiB of memory.
# Needs clang with the libFuzzer runtime (on Debian it ships with clang in
# libclang-rt-<ver>-dev / libclang-common-<ver>-dev; if -fsanitize=fuzzer does not link,
# `apt-get install libclang-rt-14-dev` or the package matching `clang --version`),
# protoc-c, libprotobuf-c-dev and libxxhash-dev.
set -eu
cd "$(dirname "$0")/../.."
CLANG=${CLANG:-clang}
OUT=build/fuzz
TARGETS="fuzz_proc fuzz_image fuzz_blob fuzz_helper fuzz_pidreq fuzz_rpc fuzz_pserver"
SECS=
BUILD=1
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) SECS=20 ;;
	--run) SECS=${2:?--run needs seconds}; shift ;;
	--no-build) BUILD= ;;
	-*) echo "usage: $0 [--no-build] [--smoke | --run SECS [TARGET...]]" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
RUN_TARGETS=${*:-$TARGETS}

if [ -n "$BUILD" ]; then
mkdir -p "$OUT/gen" "$OUT/obj"
protoc-c --c_out="$OUT/gen" -Isrc src/image/stasis.proto
protoc-c --c_out="$OUT/gen" -Isrc src/rpc/rpc.proto

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-std=gnu11 -D_GNU_SOURCE -g -O1 -Isrc -I$OUT/gen -Wall -Wextra -Wno-format-nonliteral"
LIBS="-lprotobuf-c -lxxhash"

# The code under test: instrumented for coverage (fuzzer-no-link) and sanitizers.
objs=
for src in src/proc/parse.c src/proc/mountinfo.c src/core/util.c src/core/log.c src/image/img.c \
	src/image/blob.c src/image/remote.c src/image/pserver.c src/helper/proto.c src/helper/policy.c "$OUT/gen/image/stasis.pb-c.c"; do
	obj="$OUT/obj/$(basename "$src" .c).o"
	$CLANG $CFLAGS $SAN -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
	objs="$objs $obj"
done
# fuzz_rpc only: the RPC decoder and its schema
for src in src/rpc/proto.c "$OUT/gen/rpc/rpc.pb-c.c"; do
	$CLANG $CFLAGS $SAN -fsanitize=fuzzer-no-link -c "$src" -o "$OUT/obj/rpc-$(basename "$src" .c).o"
done
# fuzz_pidreq only: pidreq.c links to the namespaces module, which the target stubs
$CLANG $CFLAGS $SAN -fsanitize=fuzzer-no-link -c src/cr/pidreq.c -o "$OUT/obj/pidreq.o"
for t in $TARGETS; do
	more=
	[ "$t" = fuzz_pidreq ] && more="$OUT/obj/pidreq.o"
	[ "$t" = fuzz_rpc ] && more="$OUT/obj/rpc-proto.o $OUT/obj/rpc-rpc.pb-c.o"
	$CLANG $CFLAGS -Werror $SAN -fsanitize=fuzzer -o "$OUT/$t" "tests/fuzz/$t.c" $objs $more \
		$LIBS
done
# Generated seeds: the /proc fixtures, one small valid message of each image kind, a few
# blobs, helper requests.
$CLANG $CFLAGS -o "$OUT/mkseeds" tests/fuzz/mkseeds.c "$OUT/obj/img.o" "$OUT/obj/blob.o" "$OUT/obj/remote.o" \
	"$OUT/obj/stasis.pb-c.o" "$OUT/obj/log.o" "$OUT/obj/util.o" $SAN $LIBS
for t in $TARGETS; do
	mkdir -p "$OUT/seeds-$t" "$OUT/corpus-$t"
done
find tests/fixtures/proc -type f ! -name 'capture.*' -exec cp {} "$OUT/seeds-fuzz_proc/" \;
"$OUT/mkseeds" "$OUT/seeds-fuzz_image" "$OUT/seeds-fuzz_blob"
$CLANG $CFLAGS -o "$OUT/mkseeds_helper" tests/fuzz/mkseeds_helper.c "$OUT/obj/proto.o" $SAN
"$OUT/mkseeds_helper" "$OUT/seeds-fuzz_helper"
$CLANG $CFLAGS -o "$OUT/mkseeds_rpc" tests/fuzz/mkseeds_rpc.c "$OUT/obj/rpc-rpc.pb-c.o" $SAN $LIBS
"$OUT/mkseeds_rpc" "$OUT/seeds-fuzz_rpc"
echo "built $(for t in $TARGETS; do printf '%s ' "$OUT/$t"; done)"
fi

[ -n "$SECS" ] || exit 0
status=0
for t in $RUN_TARGETS; do
	[ -x "$OUT/$t" ] || { echo "$t: not built ($OUT/$t)"; status=1; continue; }
	echo "== $t for $SECS s"
	mkdir -p "$OUT/seeds-$t" "$OUT/corpus-$t"
	seeds="$OUT/seeds-$t"
	[ -d "tests/fuzz/corpus/$t" ] && seeds="$seeds tests/fuzz/corpus/$t"
	# -timeout bounds a single input; timeout(1) bounds the whole run. The first
	# directory gets the new inputs; the committed corpus is only read.
	if ! timeout $((SECS + 60)) "$OUT/$t" -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$OUT/crash-$t-" \
		"$OUT/corpus-$t" $seeds >"$OUT/$t.log" 2>&1; then
		echo "$t: FAILED (see $OUT/$t.log and $OUT/crash-$t-*)"
		tail -40 "$OUT/$t.log"
		status=1
	else
		grep -E 'stat::number_of_executed_units|stat::new_units_added' "$OUT/$t.log" || true
		echo "$t: ok"
	fi
done
exit $status
