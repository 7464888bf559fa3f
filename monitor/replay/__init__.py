"""`reputation-monitor replay PATH...`: backtest the rules on archived events.

Reads every record (files and directories of JSON, JSON Lines, gzip, Firehose S3 objects, SQS
receive-message dumps), decodes each exactly as the daemon does (`decode_object` /
`decode_body`), sorts the events by event time (stable: input order breaks ties), and feeds
them to the daemon's own Engine. "Now" is the newest event time seen (contract, "Rates"); all
events of one instant are ingested together and evaluated at once, so a crossing is decided at
the instant that causes it. No wall clock, no store, no actions: the output depends on the
input and the rules alone, byte for byte.

How it gets there fast, none of it changing a byte of the output: JSON Lines are parsed with
orjson a line at a time (the general reader takes anything else); with worker processes, the
main process reads and the workers parse and decode, while the events already read are
replayed, as far as the archive's time order makes that safe.

The stages, a module each: `reading` (files → records → events, the general path),
`workers` (the same in worker processes, a block of lines at a time), `replayer` (the events
through the Engine on event time), `report` (decision lines, the table, progress), `cli` (the
command).
"""

from monitor.replay.cli import add_parser, cmd_replay

__all__ = ["add_parser", "cmd_replay"]
