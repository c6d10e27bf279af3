//! The backend contract suite (lands in the next commit).
