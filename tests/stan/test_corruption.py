"""A node that finds its files corrupt refuses to serve with a clear error (ARCHITECTURE
§3): a message record changed on disk while the node was down is caught by its
checksum at start, and the node exits instead of serving the changed message."""
from __future__ import annotations

import pytest

from tests.support.procs import runnel_process
from tests.support.stan import Stan, eventually, wait_stan_ready

pytestmark = pytest.mark.timeout(120)

PAYLOAD = b"precious-payload-0123456789"


async def test_a_flipped_bit_in_a_stored_message_stops_the_node(tmp_path):
    data = tmp_path / "data"
    node = runnel_process(tmp_path, "-st", "file", "-dir", str(data), name="first").start()
    try:
        await wait_stan_ready(node.url)
        client = await Stan.connect(node.url, "writer")
        await client.publish("foo", PAYLOAD)
        await client.close()
    finally:
        assert node.stop() == 143  # SIGTERM: a clean stop
    store = data / "store" / "data.mdb"
    raw = bytearray(store.read_bytes())
    at = raw.find(PAYLOAD)
    assert at > 0, "the payload is stored as is"
    raw[at + 3] ^= 0x01  # one bit, as a failing disk would
    store.write_bytes(bytes(raw))

    again = runnel_process(tmp_path, "-st", "file", "-dir", str(data), name="second")
    with pytest.raises(RuntimeError, match="exited with 1"):
        again.start()
    log = again.log_text()
    assert "cannot start" in log and "is corrupt" in log and "foo seq 1" in log, log[-2000:]


async def test_an_intact_store_starts_and_serves_its_messages(tmp_path):
    data = tmp_path / "data"
    for name in ("first", "second"):
        node = runnel_process(tmp_path, "-st", "file", "-dir", str(data), name=name).start()
        try:
            await wait_stan_ready(node.url)
            client = await Stan.connect(node.url, f"c-{name}")
            if name == "first":
                await client.publish("foo", PAYLOAD)
            else:
                sub = await client.subscribe("foo")
                await eventually(lambda: len(sub.msgs) == 1, what="the stored message")
                assert sub.msgs[0].data == PAYLOAD
            await client.close()
        finally:
            node.stop()
