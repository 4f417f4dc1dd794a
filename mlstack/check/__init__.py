"""The offline policy check: the pack's rules over a recorded plan, with waivers and report formats."""
