"""Recovery of what dead (or presumed dead) worker processes held: bounded in time, whatever the
queue and whatever the size of the keyspace, and a frozen process that wakes up stops instead of
running a job a second time.

HEARTBEAT_TIMEOUT is 3 s in the tests.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from gabay.cluster.clock import RedisClock
from gabay.cluster.dead_workers import DeadWorkers
from gabay.cluster.status_reader import StatusReader
from gabay.keys import Keys
from gabay.queues import FORM_RESPONSE
from gabay.settings import Settings
from tests.chaos.actors import OTHER_QUEUE, QUEUE
from tests.chaos.cluster import Cluster
from tests.chaos.redis_server import RedisServer
from tests.support.limit_checks import max_overlap
from tests.support.polling import assert_stays, wait_for

pytestmark = pytest.mark.slow

HEARTBEAT_TIMEOUT = 3.0
#: The stated bound: a killed worker's jobs start again within HEARTBEAT_TIMEOUT + 2 s.
RESTART_BOUND = HEARTBEAT_TIMEOUT + 2.0


def tokens(cluster: Cluster, event: str) -> Counter[str]:
    return Counter(e["token"] for e in cluster.events(event))


def heartbeat_ids(client: redis.Redis, keys: Keys) -> set[str]:
    return {member.decode() for member in client.zrange(keys.heartbeats, 0, -1)}


def test_a_killed_workers_capped_jobs_start_again_within_the_stated_bound(cluster: Cluster) -> None:
    hold = cluster.hold("three")
    first = cluster.start_workers(processes=1, threads=4)
    for n in range(3):
        cluster.send("three_at_once", f"j{n}", "three")
    wait_for(lambda: sum(tokens(cluster, "start").values()) == 3, timeout=30, message="3 starts")
    second = cluster.start_workers(processes=1, threads=4)

    killed_at = time.time()
    first.kill()  # SIGKILL to the whole group: no drain, the cap leases are left behind
    survivor = second.child_pids()[0]
    wait_for(lambda: sum(1 for e in cluster.events("start") if e["pid"] == survivor) == 3,
             timeout=30, message="the 3 jobs to start again in the surviving worker")
    restarts = [e["at"] - killed_at for e in cluster.events("start") if e["pid"] == survivor]
    assert max(restarts) <= RESTART_BOUND, restarts

    hold.unlink()
    wait_for(lambda: sum(tokens(cluster, "end").values()) == 3, timeout=30, message="3 ends")
    assert max_overlap(cluster.intervals()) <= 3


def test_a_dead_workers_message_of_a_queue_no_live_worker_consumes_goes_back_to_that_queue(
        cluster: Cluster) -> None:
    keys = cluster.keys
    hold = cluster.hold("orphan")
    before = heartbeat_ids(cluster.client, keys)
    gone = cluster.start_workers(processes=1, threads=2, queues=(OTHER_QUEUE,))
    cluster.send("elsewhere", "orphan", queue=OTHER_QUEUE)
    wait_for(lambda: tokens(cluster, "start")["orphan"] == 1, timeout=30, message="the job to start")
    dead_ids = heartbeat_ids(cluster.client, keys) - before
    gone.kill()
    cluster.start_workers(processes=1, threads=2, queues=(QUEUE,))  # consumes another queue only

    wait_for(lambda: cluster.client.llen(keys.queue(OTHER_QUEUE)) == 1, timeout=HEARTBEAT_TIMEOUT + 10,
             message="the orphan back in its own queue")
    assert not dead_ids & heartbeat_ids(cluster.client, keys), "the dead worker is forgotten"
    assert not any(cluster.client.exists(keys.acks(w, OTHER_QUEUE)) for w in dead_ids)

    hold.unlink()
    cluster.start_workers(processes=1, threads=2, queues=(OTHER_QUEUE,))
    wait_for(lambda: tokens(cluster, "end")["orphan"] == 1, timeout=30, message="the orphan to run")


def test_a_frozen_worker_that_wakes_up_stops_before_the_side_effect_of_a_job_it_lost(
        cluster: Cluster) -> None:
    hold = cluster.hold("frozen")
    frozen = cluster.start_workers(processes=1, threads=2)
    cluster.send("guarded", "g1", "frozen")
    wait_for(lambda: tokens(cluster, "start")["g1"] == 1, timeout=30, message="the job to start")
    frozen_pid = frozen.child_pids()[0]
    other = cluster.start_workers(processes=1, threads=2)

    os.kill(frozen_pid, signal.SIGSTOP)  # longer than HEARTBEAT_TIMEOUT: presumed dead
    try:
        wait_for(lambda: tokens(cluster, "start")["g1"] == 2, timeout=HEARTBEAT_TIMEOUT + 10,
                 message="the job to be given to the other worker")
    finally:
        os.kill(frozen_pid, signal.SIGCONT)
    hold.unlink()  # both runs go on to their ownership check at the same moment

    wait_for(lambda: tokens(cluster, "end")["g1"] == 1, timeout=30, message="the job to finish")
    wait_for(lambda: "was given to another process" in frozen.log(), timeout=10,
             message="the frozen worker to stop its run")
    effects = [e for e in cluster.events("effect") if e["token"] == "g1"]
    assert len(effects) == 1 and effects[0]["pid"] == other.child_pids()[0]
    assert_stays(lambda: tokens(cluster, "effect")["g1"] == 1, 0.5, "a late effect of the woken run")
    assert cluster.client.hlen(cluster.keys.messages(QUEUE)) == 0, "the message data is gone, acked once"


# -- the recovery pass and status, on Redis alone -----------------------------------------------


@pytest.fixture
def own_redis(chaos_redis: RedisServer) -> redis.Redis:
    return chaos_redis.client()


def plant_dead_worker(client: redis.Redis, keys: Keys, worker: str, queue: str, message_id: str,
                      *, dead_for_ms: int, register: bool = True) -> None:
    """What a worker killed while running ``message_id`` of ``queue`` leaves in Redis."""
    now = RedisClock(client).now_ms()
    client.zadd(keys.heartbeats, {worker: now - dead_for_ms})
    client.sadd(keys.acks(worker, queue), message_id)
    client.hset(keys.messages(queue), message_id, b'{"message_timestamp": 0}')
    if register:
        client.sadd(keys.worker_queues(worker), queue)
    client.sadd(keys.consumed_queues, queue)


def test_status_shows_a_dead_workers_unrecovered_messages_and_health_names_them(
        own_redis: redis.Redis, settings: Settings) -> None:
    keys = settings.keys
    plant_dead_worker(own_redis, keys, "dead-1", FORM_RESPONSE, "m1", dead_for_ms=60_000)
    status = StatusReader(settings, own_redis).read()

    assert status.per_queue[FORM_RESPONSE].stranded == 1
    assert any("held by worker processes gone" in reason for reason in status.reasons)
    assert not status.healthy

    dead_workers = DeadWorkers(own_redis, keys, RedisClock(own_redis), int(HEARTBEAT_TIMEOUT * 1000))
    assert dead_workers.run_pass("live-1", judge=True) == (1, 1)
    status = StatusReader(settings, own_redis).read()
    assert status.per_queue[FORM_RESPONSE].stranded == 0
    assert status.per_queue[FORM_RESPONSE].waiting == 1
    assert any(f"no live worker consumes queue {FORM_RESPONSE!r}" in r for r in status.reasons)


def test_the_pass_recovers_a_worker_that_never_registered_from_the_queues_ever_consumed(
        own_redis: redis.Redis, settings: Settings) -> None:
    keys = settings.keys
    plant_dead_worker(own_redis, keys, "old-release", "reports", "m1", dead_for_ms=60_000,
                      register=False)
    dead_workers = DeadWorkers(own_redis, keys, RedisClock(own_redis), int(HEARTBEAT_TIMEOUT * 1000))
    assert dead_workers.run_pass("live-1", judge=False) == (0, 0)  # only heartbeats
    assert own_redis.llen(keys.queue("reports")) == 0
    assert dead_workers.run_pass("live-1", judge=True) == (1, 1)
    assert own_redis.lrange(keys.queue("reports"), 0, -1) == [b"m1"]
    assert heartbeat_ids(own_redis, keys) == {"live-1"}


def test_a_young_heartbeat_is_not_judged_dead(own_redis: redis.Redis, settings: Settings) -> None:
    keys = settings.keys
    plant_dead_worker(own_redis, keys, "busy-1", "reports", "m1", dead_for_ms=1_000)
    dead_workers = DeadWorkers(own_redis, keys, RedisClock(own_redis), int(HEARTBEAT_TIMEOUT * 1000))
    assert dead_workers.run_pass("live-1", judge=True) == (0, 0)
    assert own_redis.sismember(keys.acks("busy-1", "reports"), "m1")


def keyspace_scans(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: int(stats[name]["calls"]) for name in ("cmdstat_keys", "cmdstat_scan") if name in stats}


def test_the_recovery_pass_never_scans_the_keyspace_where_dramatiqs_maintenance_does(
        own_redis: redis.Redis, settings: Settings) -> None:
    keys = settings.keys
    for start in range(0, 100_000, 10_000):
        own_redis.mset({f"filler:{n}": "x" for n in range(start, start + 10_000)})
    plant_dead_worker(own_redis, keys, "dead-1", "reports", "m1", dead_for_ms=60_000)
    dead_workers = DeadWorkers(own_redis, keys, RedisClock(own_redis), int(HEARTBEAT_TIMEOUT * 1000))

    own_redis.config_resetstat()
    assert dead_workers.run_pass("live-1", judge=True) == (1, 1)
    dead_workers.stranded()
    assert keyspace_scans(own_redis) == {}

    # The same dead worker under Dramatiq's own maintenance: a KEYS over the whole keyspace.
    plant_dead_worker(own_redis, keys, "dead-2", "reports", "m2", dead_for_ms=60_000)
    plain = RedisBroker(client=own_redis, namespace=keys.namespace, middleware=[],
                        heartbeat_timeout=int(HEARTBEAT_TIMEOUT * 1000))
    plain.scripts["dispatch"](args=["qsize", int(time.time() * 1000), "reports", "plain-1",
                                    plain.heartbeat_timeout, plain.dead_message_ttl, 1, 7999],
                              keys=[keys.namespace])
    assert keyspace_scans(own_redis).get("cmdstat_keys", 0) >= 1
