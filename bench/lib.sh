# Shared by the bench scripts (source it): helpers that every load run
# needs the same way.

# free_ports N prints N ports on 127.0.0.1 that are free for TCP and UDP
# alike, with port + 2 free for UDP too (sipp's -rtp_echo binds media
# port + 2). The sockets are held until all N are chosen, so no two are
# the same; another process may still take one before the caller binds it.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1])
out, held = [], []
while len(out) < n:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
        u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.bind(("127.0.0.1", p + 2)); held.append(u2)
    except OSError:
        t.close(); u.close(); continue
    held += [t, u]; out.append(p)
print(*out)
PY
}
