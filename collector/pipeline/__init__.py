"""The shared delivery layer: fan-out, bounded queues, disk spool, batching, retry, dead letters, metrics.

A shipper only encodes, sends and classifies (collector.pipeline.api); everything else is here, once.
"""

from collector.pipeline.api import (
                                     Delivered,
                                     Format,
                                     Health,
                                     Kind,
                                     Outcome,
                                     Partial,
                                     Record,
                                     Rejected,
                                     Request,
                                     Retry,
                                     Shipper,
                                     TooLarge,
)
from collector.pipeline.config import (
                                     COMMON_KEYS,
                                     BatchSettings,
                                     DeadLetterSettings,
                                     QueueSettings,
                                     RetrySettings,
                                     ShipperSettings,
                                     SpoolSettings,
                                     TlsSettings,
                                     create_shipper,
                                     parse_settings,
                                     shipper_module,
                                     shipper_types,
                                     validate_shipper,
)
from collector.pipeline.fanout import Pipeline, PipelineStopped, RenderFn

__all__ = [
    "COMMON_KEYS", "BatchSettings", "DeadLetterSettings", "Delivered", "Format", "Health", "Kind", "Outcome",
    "Partial", "Pipeline", "PipelineStopped", "QueueSettings", "Record", "Rejected", "RenderFn", "Request",
    "Retry", "RetrySettings", "Shipper", "ShipperSettings", "SpoolSettings", "TlsSettings", "TooLarge",
    "create_shipper", "parse_settings", "shipper_module", "shipper_types", "validate_shipper",
]
