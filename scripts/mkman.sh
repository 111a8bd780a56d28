#!/bin/sh
# Make the man page stasis(1) from the one source of every option's text: each
# command's own --help (src/cli/*.c). Usage: scripts/mkman.sh BUILD/stasis > stasis.1
set -eu
ST=${1:?usage: mkman.sh PATH-TO-STASIS}
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"; }
VER=$("$ST" --version | head -n 1 | esc)
cat <<HDR
.TH STASIS 1 "" "$VER" "User Commands"
.SH NAME
stasis \\- checkpoint and restore of Linux process trees
.SH SYNOPSIS
.nf
HDR
"$ST" --help | sed -n '2,$p' | sed 's/^  \([a-z-]\)/stasis \1/' | esc
cat <<'DESC'
.fi
.SH DESCRIPTION
stasis freezes a running process tree (memory, registers, threads, files, sockets,
terminals and the namespaces the tree lives in), writes it to a directory of image
files, and restores it later, on this machine or another, so that the processes carry
on. A state stasis does not restore exactly is refused at dump with one line naming it,
and the tree keeps running. Invoked as \fBcriu\fR (a link), stasis takes CRIU's command
line and its RPC protocol (\fBswrk\fR), so that runc and Podman can use it.
.SH COMMANDS
DESC
for c in dump pre-dump restore show check gc unlock-network page-server migrate helper; do
	printf '.SS %s\n.nf\n' "$c"
	"$ST" "$c" --help | esc
	printf '.fi\n'
done
cat <<'TAIL'
.SS swrk
.nf
stasis swrk FD
.fi
Serve CRIU-compatible RPC requests (runc, Podman) on the socket FD.
.SH FILES
The images directory holds inventory.img, core-PID.img, mm-PID.img, files-PID.img,
pages-PID.img, ns-PID.img, blobs.img, netlock.img and stats-dump.img; \fBstasis show\fR
prints any of them as JSON.
.SH EXIT STATUS
0 on success; a dump or restore that failed exits non-zero after one line on stderr
naming the first error; \fBrestore\fR without \fB\-d\fR exits with the restored root's
status (128+N for signal N).
.SH SEE ALSO
.BR criu (8),
.BR runc (8)
TAIL
