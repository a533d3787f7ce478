//! TODO(stub): filled in by its owner.
