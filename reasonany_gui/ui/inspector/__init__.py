"""The mask inspector: where the merge took weights from, per layer and module, down to one tensor."""
