"""Whether the Ray system processes a driver depends on still answer (no Ray call made: a
driver whose raylet or GCS is gone is ended by Ray at its next object put)."""

from __future__ import annotations

import socket


def _node(ray):
    try:
        return ray._private.worker.global_worker.node
    except AttributeError:
        return None


def raylet_answers(ray) -> bool:
    """Whether this driver's raylet accepts a connection on its Unix socket (True when it
    cannot tell: no socket path, no Unix sockets)."""
    path = getattr(_node(ray), "raylet_socket_name", None)
    family = getattr(socket, "AF_UNIX", None)
    if family is None or not isinstance(path, str) or not path.startswith("/"):
        return True
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def gcs_answers(ray) -> bool:
    """Whether the cluster's GCS accepts a TCP connection at its address (True when it cannot
    tell)."""
    address = getattr(_node(ray), "gcs_address", None)
    if not isinstance(address, str) or ":" not in address:
        return True
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return True
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            return True
    except OSError:
        return False
