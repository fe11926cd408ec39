//! Retention (`DESIGN.md` §5): deleting whole sealed segments by age and size, rewriting a
//! segment without the records a per-source rule expired (offsets preserved), pinned sessions,
//! and `forget`. Only segments every consumer (views, index) has passed are touched; the caller
//! passes that bound.
