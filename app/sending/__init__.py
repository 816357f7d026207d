"""The sending engine (SPEC 6): outbound rows, the state machine, transports, pacing and recovery."""
