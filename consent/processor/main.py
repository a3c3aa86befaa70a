"""Composition root of the consent-and-policy processor: settings in, a running loop out."""

from __future__ import annotations

import asyncio
import logging
import signal

from consent.policy.load import load_protocols
from consent.processor.handle import STAGE, Context
from consent.processor.loop import LoopConfig, Processor
from consent.processor.observe import ProcessorMetrics
from consent.processor.reload import ProtocolReloader
from consent.processor.settings import ProcessorSettings
from services.backbone import kafka
from services.backbone.errors import ConfigurationError
from services.backbone.kafka_access import KafkaAccess
from services.backbone.key_roles import Role
from services.backbone.metrics_server import MetricsServer
from services.backbone.topics import DEAD_LETTER_STAGES


def context(settings: ProcessorSettings) -> Context:
    """What decisions are made with: the protocols, schemas, directory and keys the settings
    name. Refuses (ConfigurationError/ProtocolError) without keys or protocols."""
    directory = settings.directory()
    schemas = settings.schemas()
    return Context.from_keyring(
        topics=settings.topics(),
        protocols=load_protocols(settings.protocols_dir, directory=directory, schemas=schemas),
        schemas=schemas,
        directory=directory,
        keyring=settings.keyring(Role.PROCESSOR),
    )


async def check_co_partitioned(access: KafkaAccess, topics: list[str]) -> None:
    """Source topics and the state changelogs must have one partition count: partition N of
    each holds the same children, and one transactional id fences all of them."""
    counts = await kafka.partition_counts(access, topics)
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{t}: {n}" for t, n in counts.items())
        raise ConfigurationError(
            f"these topics must have the same number of partitions, and have {listed}; "
            "grow only the state changelogs (adding partitions to a source topic moves "
            "children away from their state)"
        )


def bootstrap(settings: ProcessorSettings, *, metrics: ProcessorMetrics | None = None) -> Processor:
    """Wire the processor; refuses (ConfigurationError/ProtocolError) without keys or protocols.
    ``metrics``: instead of its own (a benchmark counts what it writes)."""
    ctx = context(settings)
    directory, topics, keyring = ctx.directory, ctx.topics, settings.keyring(Role.PROCESSOR)
    config = LoopConfig(
        access=settings.kafka_access(),
        group_id=topics.processor_group,
        transactional_prefix=topics.processor_group,
        source_topics=[topics.source(a.id) for a in directory.publishers],
        batch_max=settings.batch_max,
        transaction_timeout_ms=settings.transaction_timeout_ms,
    )
    return Processor(
        config, ctx, reload=ProtocolReloader(settings.protocols_dir, keyring), metrics=metrics
    )


async def serve(settings: ProcessorSettings) -> None:
    processor = bootstrap(settings)
    topics = settings.topics()
    # Only the topics it uses: a principal sees only the topics it has rights on.
    others = {topics.dlq(stage) for stage in DEAD_LETTER_STAGES if stage != STAGE}
    others |= {topics.audit_checkpoints, topics.audit_activity}  # others write them
    mine = [s for s in topics.all_specs(settings.directory()) if s.name not in others]
    await kafka.ensure_topics(settings.kafka_access(), mine)
    await check_co_partitioned(processor.config.access, processor.co_partitioned_topics())
    server = (
        MetricsServer(
            processor.metrics.source,
            host=settings.host,
            port=settings.port,
            token=settings.scrape_token(),
        )
        if settings.port
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # aiokafka logs whole records at DEBUG: never below INFO here, whatever the root says.
    quiet = logging.getLogger("aiokafka")
    quiet.setLevel(max(logging.INFO, quiet.getEffectiveLevel()))
    logging.getLogger(__name__).info("consent-and-policy processor starting")
    try:
        await processor.run(stop)
    finally:
        if server is not None:
            server.close()
        processor.metrics.source.shutdown()
