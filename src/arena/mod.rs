//! The arena: two models answer the same conversation, the user says which
//! reply is better, and the votes add up to a standing table. This module
//! is the votes and their statistics; the chat's compare mode casts them.
//!
//! - `vote`: what one vote records (the two sides, the verdict, blindness);
//! - `votes_file`: the append-only JSONL file under the data dir;
//! - `duel`: the compare mode's state: two columns, their histories, votes;
//! - `runner`: a duel's two engines, one task per column;
//! - `games`: votes as games between named models;
//! - `pairs`: wins, ties and losses per pair of models, Wilson intervals;
//! - `rating`: a Bradley–Terry rating per model with bootstrap intervals;
//! - `standing`: both together, as a table, Markdown, CSV or JSON.

pub mod duel;
pub mod games;
pub mod pairs;
pub mod rating;
pub mod runner;
pub mod standing;
pub mod vote;
pub mod votes_file;

pub use vote::{Side, Verdict, Vote};
