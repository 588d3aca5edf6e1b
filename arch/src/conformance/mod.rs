//! The bring-up kit placeholder.
