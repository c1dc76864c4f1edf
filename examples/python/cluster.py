"""A 3-node dkv cluster inside this Python process: write and read with
consistency levels, stop a node, and watch a QUORUM read still succeed.

    pip install ./bindings/python
    python examples/python/cluster.py
"""

import time

import dkv


def main() -> None:
    # Three nodes on free 127.0.0.1 ports, N=3 W=2 R=2, data in a temp dir.
    with dkv.local_cluster(3) as cluster:
        print("cluster up:", ", ".join(cluster.addresses))
        client = dkv.Client(cluster.addresses)

        # Writes and reads, each with its own consistency level.
        client.put(b"greeting", b"hello", consistency=dkv.ALL)  # all 3 replicas
        client.put("user:1", b"ada")  # QUORUM (2 of 3) is the default
        client.put_many({"user:2": b"grace", "user:3": b"barbara"}, consistency=dkv.QUORUM)
        print("ONE    greeting ->", client.get(b"greeting", consistency=dkv.ONE))
        print("ALL    user:1   ->", client.get("user:1", consistency=dkv.ALL))
        print("2      users    ->", client.get_many(["user:1", "user:2", "user:3"], consistency=2))

        # One replica goes away.
        victim = cluster.nodes[2]
        victim.stop()
        print(f"\nstopped node {victim.node_id} ({victim.address})")
        print("QUORUM user:1   ->", client.get("user:1", consistency=dkv.QUORUM))
        client.put("user:4", b"margaret")  # QUORUM still met by two replicas
        print("QUORUM user:4   ->", client.get("user:4"))
        try:
            client.get("user:1", consistency=dkv.ALL)
        except dkv.Unavailable as e:
            print("ALL    user:1   -> Unavailable:", e)

        status = client.status()
        for peer in status.peers:
            print(f"  node {status.node_id} sees node {peer.node_id}: up={peer.up} hints={peer.hints_pending}")

        # It comes back on the same data; hinted writes are handed to it.
        victim.start()
        cluster.wait_until_up()
        cluster.wait_for_hints()
        print(f"\nrestarted node {victim.node_id}")
        print("ALL    user:4   ->", client.get("user:4", consistency=dkv.ALL))
        with dkv.Client(victim.address) as direct:
            print("via node 3 ONE  ->", direct.get("user:4", consistency=dkv.ONE))
        client.close()


if __name__ == "__main__":
    start = time.monotonic()
    main()
    print(f"\ndone in {time.monotonic() - start:.1f}s")
