"""Recall ranking of the embedded memory server: order, filters, access counting, expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from handoffs import demo
from handoffs.memory import lexical
from handoffs.memory.embedded import EmbeddedStore
from handoffs.memory.models import Memory
from handoffs.memory.services import memory_store

pytestmark = pytest.mark.pg

AGENT = "user-dave"


@pytest.fixture
def store(db) -> EmbeddedStore:
    return EmbeddedStore()


def put(store: EmbeddedStore, content: str, agent_id: str = AGENT, **fields) -> str:
    return store.store(agent_id=agent_id, content=content, **fields)["memory"]["id"]


def age(memory_id: str, days: float) -> None:
    """Make a memory look ``days`` old."""
    when = timezone.now() - dt.timedelta(days=days)
    Memory.objects.filter(uid=memory_id).update(created_at=when, last_accessed_at=when)


def ids(body: dict) -> list[str]:
    return [hit["memory"]["id"] for hit in body["memories"]]


def seed(store: EmbeddedStore) -> dict[str, str]:
    session = store.start_session(
        agent_id=AGENT, metadata={"agent": "tier1-bot", "channel": "chat"}
    )
    sid = session["session"]["id"]
    made = {
        "issue": put(
            store,
            "User reports billing discrepancy: charged $299 but plan is $199/mo",
            importance=0.9,
            metadata={"type": "issue"},
            session_id=sid,
        ),
        "context": put(
            store,
            "User has been a customer since 2024. Account ID: ACC-4521.",
            importance=0.8,
            metadata={"type": "context"},
            session_id=sid,
        ),
        "handoff": put(
            store,
            demo.SEED_SUMMARY,
            importance=1.0,
            metadata={
                "type": "handoff",
                "from_agent": "tier1-bot",
                "to_agent": "billing-specialist",
            },
            session_id=sid,
        ),
    }
    store.end_session(session_id=sid, summary="Bot->human handoff: billing overcharge")
    store.start_session(agent_id=AGENT, metadata={"agent": "billing-specialist"})
    return made


def test_seed_handoff_summary_ranks_first(store):
    made = seed(store)
    body = store.recall(agent_id=AGENT, query=demo.SEED_QUERY, top_k=3)
    assert ids(body) == [made["handoff"], made["issue"], made["context"]]
    # It stays first over repeated recalls (access counts don't reorder it) ...
    for _ in range(3):
        assert ids(store.recall(agent_id=AGENT, query=demo.SEED_QUERY, top_k=1)) == [
            made["handoff"]
        ]
    # ... and among many less important memories of the same namespace.
    for i in range(30):
        put(store, f"Billing issue note {i}: customer asked about the invoice", importance=0.5)
    assert ids(store.recall(agent_id=AGENT, query=demo.SEED_QUERY, top_k=3))[0] == made["handoff"]


def test_seed_through_the_intake_service_makes_one_handoff(store, teams):
    """``memory_store`` is what the API calls: the seed's handoff memory intakes."""
    session = store.start_session(agent_id=AGENT)["session"]["id"]
    result = memory_store(
        bot=None,
        agent_id=AGENT,
        content=demo.SEED_SUMMARY,
        importance=1.0,
        metadata={"type": "handoff", "from_agent": "tier1-bot", "to_agent": "billing-specialist"},
        session_id=session,
    )
    top = store.recall(agent_id=AGENT, query=demo.SEED_QUERY, top_k=1)
    assert ids(top) == [result["memory"]["id"]]


def test_rank_score_is_non_increasing(store):
    for i, (text, importance) in enumerate(
        [
            ("refund for the duplicate charge", 0.2),
            ("duplicate charge on the card, refund requested", 0.9),
            ("customer likes the new dashboard", 1.0),
            ("charge disputed with the bank", 0.5),
            ("refund processed", 0.7),
            ("the printer is broken", 0.1),
        ]
    ):
        memory_id = put(store, text, importance=importance)
        age(memory_id, days=i * 7)
    body = store.recall(agent_id=AGENT, query="refund duplicate charge", top_k=10)
    scores = [hit["rank_score"] for hit in body["memories"]]
    assert len(scores) == 6
    assert scores == sorted(scores, reverse=True)
    contents = [hit["memory"]["content"] for hit in body["memories"]]
    assert contents[0] == "duplicate charge on the card, refund requested"
    # A memory matching every query word beats an important one matching none.
    assert contents.index("refund for the duplicate charge") < contents.index(
        "customer likes the new dashboard"
    )
    for hit in body["memories"]:
        assert set(hit) == {"memory", "score", "weighted_score", "smart_score", "rank_score"}
        assert 0.0 <= hit["score"] <= 1.0
    assert store.recall(agent_id=AGENT, query="refund", top_k=2)["memories"].__len__() == 2


def test_recency_breaks_ties(store):
    old = put(store, "password reset requested", importance=0.5)
    new = put(store, "password reset requested", importance=0.5)
    age(old, days=60)
    assert ids(store.recall(agent_id=AGENT, query="password reset", top_k=2)) == [new, old]


def test_session_filter(store):
    first = store.start_session(agent_id=AGENT)["session"]["id"]
    second = store.start_session(agent_id=AGENT)["session"]["id"]
    a = put(store, "invoice question", session_id=first)
    put(store, "invoice question again", session_id=second)
    put(store, "invoice question without a session")
    body = store.recall(agent_id=AGENT, query="invoice", session_id=first, top_k=10)
    assert ids(body) == [a]


def test_tags_filter_matches_any_tag(store):
    billing = put(store, "card declined", tags=["billing", "card"])
    urgent = put(store, "card stolen", tags=["urgent"])
    put(store, "card expired", tags=["other"])
    put(store, "card untagged")
    body = store.recall(agent_id=AGENT, query="card", tags=["billing", "urgent"], top_k=10)
    assert sorted(ids(body)) == sorted([billing, urgent])
    assert ids(store.search(agent_id=AGENT, query="card", tags=["card"])) == [billing]
    assert ids(store.recall(agent_id=AGENT, query="card", tags=["nope"])) == []


def test_memory_type_filter(store):
    semantic = put(store, "prefers email", memory_type="semantic")
    put(store, "sent an email yesterday")
    procedural = put(store, "to reset email, open settings", memory_type="procedural")
    assert ids(store.recall(agent_id=AGENT, query="email", memory_type="semantic")) == [semantic]
    assert ids(store.recall(agent_id=AGENT, query="email", memory_type="procedural")) == [
        procedural
    ]
    assert ids(store.recall(agent_id=AGENT, query="email", memory_type="working")) == []


def test_min_importance_filter(store):
    low = put(store, "shipping delay", importance=0.2)
    mid = put(store, "shipping address changed", importance=0.6)
    high = put(store, "shipping lost", importance=0.9)
    body = store.recall(agent_id=AGENT, query="shipping", min_importance=0.6, top_k=10)
    assert ids(body) == [high, mid]
    assert low not in ids(body)


def test_since_and_until_filters(store):
    ancient = put(store, "upgrade request one")
    middle = put(store, "upgrade request two")
    recent = put(store, "upgrade request three")
    age(ancient, days=30)
    age(middle, days=10)
    now = timezone.now()
    since = (now - dt.timedelta(days=20)).isoformat()
    until = (now - dt.timedelta(days=5)).isoformat()
    assert sorted(ids(store.recall(agent_id=AGENT, query="upgrade", since=since, top_k=10))) == (
        sorted([middle, recent])
    )
    assert sorted(ids(store.recall(agent_id=AGENT, query="upgrade", until=until, top_k=10))) == (
        sorted([ancient, middle])
    )
    both = store.recall(agent_id=AGENT, query="upgrade", since=since, until=until, top_k=10)
    assert ids(both) == [middle]
    zulu = (now - dt.timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ancient not in ids(store.recall(agent_id=AGENT, query="upgrade", since=zulu))


def test_filters_also_narrow_memories_that_match_no_word(store):
    """Filters apply to the filler (non-matching) results too, not just lexical hits."""
    tagged = put(store, "nothing in common", tags=["vip"], importance=0.9)
    put(store, "nothing at all", importance=1.0)
    assert ids(store.recall(agent_id=AGENT, query="refund", tags=["vip"])) == [tagged]


def test_recall_bumps_access_and_search_does_not(store):
    hit = put(store, "router keeps rebooting")
    miss = put(store, "billing address", agent_id="user-other")
    past = timezone.now() - dt.timedelta(days=3)
    Memory.objects.update(last_accessed_at=past)

    searched = store.search(agent_id=AGENT, query="router")
    assert ids(searched) == [hit]
    assert searched["total_count"] == 1
    after_search = Memory.objects.get(uid=hit)
    assert after_search.access_count == 0
    assert after_search.last_accessed_at == past

    recalled = store.recall(agent_id=AGENT, query="router")
    assert recalled["memories"][0]["memory"]["access_count"] == 1
    after_recall = Memory.objects.get(uid=hit)
    assert after_recall.access_count == 1
    assert after_recall.last_accessed_at > past
    assert recalled["memories"][0]["memory"]["last_accessed_at"] == int(
        after_recall.last_accessed_at.timestamp()
    )
    store.recall(agent_id=AGENT, query="router")
    assert Memory.objects.get(uid=hit).access_count == 2
    untouched = Memory.objects.get(uid=miss)
    assert (untouched.access_count, untouched.last_accessed_at) == (0, past)


def test_unknown_agent_recalls_nothing(store):
    put(store, "some memory")
    assert store.recall(agent_id="user-nobody", query="memory")["memories"] == []
    assert store.search(agent_id="user-nobody", query="memory")["memories"] == []


def test_namespaces_are_isolated(store):
    mine = put(store, "secret plan details")
    put(store, "secret plan details", agent_id="user-eve")
    assert ids(store.recall(agent_id=AGENT, query="secret plan", top_k=10)) == [mine]


def test_expired_memories_are_hidden(store):
    kept = put(store, "warranty claim accepted")
    ttl = put(store, "warranty claim pending", ttl_seconds=3600)
    past = put(
        store,
        "warranty claim draft",
        expires_at=int((timezone.now() - dt.timedelta(seconds=5)).timestamp()),
    )
    assert sorted(ids(store.recall(agent_id=AGENT, query="warranty", top_k=10))) == sorted(
        [kept, ttl]
    )
    Memory.objects.filter(uid=ttl).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert ids(store.recall(agent_id=AGENT, query="warranty", top_k=10)) == [kept]
    assert ids(store.search(agent_id=AGENT, query="warranty claim")) == [kept]
    assert past not in ids(store.recall(agent_id=AGENT, query="draft"))
    from handoffs.memory.base import MemoryNotFound

    with pytest.raises(MemoryNotFound):
        store.get_memory(agent_id=AGENT, memory_id=ttl)


def test_forget_removes_from_recall(store):
    session = store.start_session(agent_id=AGENT)["session"]["id"]
    gone = put(store, "temporary access code 1234", session_id=session)
    kept = put(store, "permanent access level admin", session_id=session)
    assert sorted(ids(store.recall(agent_id=AGENT, query="access", top_k=10))) == sorted(
        [gone, kept]
    )
    assert store.forget(agent_id="user-eve", memory_ids=[gone]) == {"deleted_count": 0}
    assert store.forget(agent_id=AGENT, memory_ids=[gone]) == {"deleted_count": 1}
    assert ids(store.recall(agent_id=AGENT, query="access code", top_k=10)) == [kept]
    assert ids(store.search(agent_id=AGENT, query="temporary")) in ([], [kept])
    assert gone not in ids(store.search(agent_id=AGENT, query="temporary"))
    assert store.get_session(session_id=session)["memory_count"] == 1


def test_queries_without_words_fall_back_to_importance(store):
    low = put(store, "alpha", importance=0.1)
    high = put(store, "beta", importance=0.9)
    assert ids(store.recall(agent_id=AGENT, query="", top_k=2)) == [high, low]
    assert ids(store.recall(agent_id=AGENT, query="the of and", top_k=2)) == [high, low]
    # Punctuation and quotes in a query are words, never query syntax.
    quoted = store.recall(agent_id=AGENT, query='alpha" OR "beta* NEAR(x) -- ; \'', top_k=2)
    assert set(ids(quoted)) == {high, low}


def test_sqlite_recall_ranks_exactly_as_the_orm_path(store):
    """SQLite ranks from one raw query and the index's own term counts; the ORM path
    (PostgreSQL, ``include_summaries=false``) decodes every row. Same candidates, same
    scores, same order, on text the two could read apart: stems, Unicode case folding,
    words glued by ``_``, tags and metadata words."""
    seed(store)
    texts = [
        "Refunds for the Straße_Ünïon account are charged twice",
        "CHARGING issues: İstanbul office reports overcharges",
        "the customer is happy; happiness_score 9",
        "plan upgrade refused, customer wants a refund",
    ]
    for i, text in enumerate(texts):
        put(
            store, text, importance=0.1 * i, tags=["billing", f"t_{i}"], metadata={"kind": "charge"}
        )
    old = put(store, "refund charged happy plan", importance=0.2)
    age(old, 40)
    gone = put(store, "refund charged happy plan", ttl_seconds=1)
    Memory.objects.filter(uid=gone).update(expires_at=timezone.now() - dt.timedelta(seconds=5))
    put(store, "refund charged happy plan", agent_id="user-other")

    queries = ["refund charged", "happiness", "Straße union", "istanbul charging", "billing charge"]
    for query in queries:
        ids_all = set(Memory.objects.values_list("pk", flat=True))
        orm = EmbeddedStore._orm_candidates(AGENT, ids_all, {})
        orm_rows = sorted(row[:3] for row in orm)
        if connection.vendor == "sqlite":
            fast = EmbeddedStore._sqlite_candidates(AGENT, ids_all, timezone.now())
            assert sorted(row[:3] for row in fast) == orm_rows, query
        assert Memory.objects.get(uid=gone).pk not in {row[0] for row in orm_rows}
        ranked = store.recall(agent_id=AGENT, query=query, top_k=10)
        if connection.vendor == "sqlite":  # FTS5 folds diacritics, PostgreSQL's english not
            assert ranked["memories"][0]["score"] > 0, query  # the queries match something
        kept = store.recall(agent_id=AGENT, query=query, top_k=10, include_summaries=False)
        assert [(h["memory"]["id"], h["rank_score"]) for h in ranked["memories"]] == [
            (h["memory"]["id"], h["rank_score"]) for h in kept["memories"]
        ], query


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_sqlite_index_counts_the_terms_each_memory_matches(store):
    """On SQLite the terms a memory matches are the index's: Porter stems, case and
    diacritics folded, words split at ``_``, tags and metadata words included."""
    folded = put(store, "Refunds for the Straße_Ünïon account", tags=["vip"])
    stemmed = put(store, "CHARGING issues, happiness low", metadata={"type": "handoff"})
    other = put(store, "refund charged happy union", agent_id="user-other")
    pks = dict(Memory.objects.values_list("uid", "pk"))
    terms = lexical.query_terms("refund union charged happy vip handoff nothing")
    hits = lexical.lexical_candidates(agent_id=AGENT, terms=terms, base_sql=None)
    counted = {pk: count for pk, _score, count in hits}
    assert counted == {pks[folded]: 3, pks[stemmed]: 3}  # refund union vip / charg happi handoff
    assert pks[other] not in counted
    # Every score is the sum of the matched terms' IDF: positive, equal counts here.
    assert all(score > 0 for _pk, score, _count in hits)


def test_best_matches_most_terms_first_then_rarest_then_newest():
    """``best_matches``: memories matching more terms first; among those matching as
    many, the one matching rarer terms (higher IDF); then the newest; cut at limit."""

    def concat(pks: list[int]) -> str:
        return ",".join(map(str, pks))

    common = [1, 2, 3, 4, 5, 6, 7, 8, 11]  # a term 9 of 11 memories match
    rare = [9, 10, 11]
    both = [4, 9]
    lists = [common, rare, both]
    idf = [lexical.idf(11, len(pks)) for pks in lists]
    assert idf[2] > idf[1] > idf[0] > 0  # rarer terms weigh more
    best = lexical.best_matches([concat(pks) for pks in lists], total=11, limit=5)
    assert best == [
        (9, pytest.approx(idf[1] + idf[2]), 2),
        (4, pytest.approx(idf[0] + idf[2]), 2),
        (11, pytest.approx(idf[0] + idf[1]), 2),
        (10, pytest.approx(idf[1]), 1),
        (8, pytest.approx(idf[0]), 1),  # the newest of 1-8, which tie
    ]
    # The cut falls among memories matching as many terms: the best of them, by score
    # then newest, whichever way they are scored (one set of terms at a time, or each).
    assert [pk for pk, _s, _c in lexical.best_matches([concat(common)], 11, 3)] == [11, 8, 7]
    steps = (1, 2, 3, 5, 7, 11, 13, 17, 19)
    many = [list(range(1, 40, k)) for k in steps]
    weights = [lexical.idf(40, len(pks)) for pks in many]
    pairs = list(zip(many, weights, strict=True))
    reference = sorted(
        (
            (pk, sum(w for pks, w in pairs if pk in pks), sum(pk in pks for pks in many))
            for pk in range(1, 40)
        ),
        key=lambda r: (-r[2], -r[1], -r[0]),
    )
    for limit in (1, 7, 20, 39, 50):
        assert lexical.best_matches([concat(p) for p in many], 40, limit) == reference[:limit]
    assert lexical.best_matches([None, ""], total=3, limit=5) == []
    # Memories the filters leave out come negated: they don't compete, but count in
    # their terms' statistics.
    filtered = lexical.best_matches(["1,-2,-3", "-3,4"], total=10, limit=5, left_out=True)
    assert filtered == [
        (4, pytest.approx(lexical.idf(10, 2)), 1),
        (1, pytest.approx(lexical.idf(10, 3)), 1),
    ]


def test_rarer_word_breaks_ties_between_equal_matches(store):
    """Two memories matching one word each, as important and as old: the one matching
    the word few memories have ranks first; one matching both ranks above both."""
    for i in range(8):
        put(store, f"invoice copy sent {i}", importance=0.5)
    common = put(store, "invoice resent", importance=0.5)
    rare = put(store, "dispute opened", importance=0.5)
    both = put(store, "dispute about the invoice", importance=0.5)
    when = timezone.now() - dt.timedelta(days=1)
    Memory.objects.update(created_at=when)
    top = ids(store.recall(agent_id=AGENT, query="invoice dispute", top_k=3))
    assert top[:2] == [both, rare]
    assert common in [*top, *ids(store.search(agent_id=AGENT, query="invoice", top_k=20))]
    body = store.search(agent_id=AGENT, query="invoice dispute", top_k=20)
    order = ids(body)
    assert order.index(rare) < order.index(common)


def test_the_candidate_cut_keeps_memories_matching_most_terms(store, monkeypatch):
    """Only ``CANDIDATES`` lexical matches are ranked: with many memories matching one
    common word, the old one matching every word must still be among them."""
    monkeypatch.setattr(lexical, "CANDIDATES", 10)
    monkeypatch.setattr(lexical.lexical_candidates, "__kwdefaults__", {"limit": 10})
    full = put(store, "refund for the duplicate charge", importance=0.3)
    age(full, 20)
    store.store_batch(
        agent_id=AGENT,
        memories=[{"content": f"refund note {i}", "importance": 0.3} for i in range(30)],
    )
    top = store.recall(agent_id=AGENT, query="refund duplicate charge", top_k=1)
    assert ids(top) == [full]
    assert top["memories"][0]["score"] == 1.0
