"""The primitives the limit middleware use: rates, sliding windows, cap leases, waiting and deferral."""
