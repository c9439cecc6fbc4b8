//! `no_repeat_ngram_size`: the tokens that would complete an n-gram the
//! sequence already holds (transformers' `NoRepeatNGramLogitsProcessor`,
//! `generation/logits_process.py`). As there, the prompt counts: for a
//! decoder-only model the n-grams are taken over the whole sequence.

/// Tokens banned as the next one after `sequence` (prompt and generated
/// tokens): for every n-gram window whose first n−1 tokens equal the
/// sequence's last n−1, that window's last token. Empty when `n` is 0 or
/// the sequence is shorter than `n`.
pub fn banned_next_tokens(sequence: &[i32], n: usize) -> Vec<i32> {
    if n == 0 || sequence.len() < n {
        return Vec::new();
    }
    let suffix = &sequence[sequence.len() + 1 - n..];
    sequence
        .windows(n)
        .filter(|window| &window[..n - 1] == suffix)
        .map(|window| window[n - 1])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::banned_next_tokens;

    #[test]
    fn a_repeated_prefix_bans_what_followed_it() {
        // 1 2 3 1 → after "1" comes "2" once already.
        assert_eq!(banned_next_tokens(&[1, 2, 3, 1], 2), vec![2]);
        assert_eq!(banned_next_tokens(&[1, 2, 1, 3, 1], 2), vec![2, 3]);
        assert_eq!(banned_next_tokens(&[1, 2, 3, 1, 2], 3), vec![3]);
        assert_eq!(banned_next_tokens(&[1, 2, 3, 1, 3], 3), Vec::<i32>::new());
    }

    #[test]
    fn short_sequences_and_size_zero_ban_nothing() {
        assert!(banned_next_tokens(&[1], 2).is_empty());
        assert!(banned_next_tokens(&[1, 1, 1], 0).is_empty());
        // Size 1 bans every token seen (transformers does the same).
        assert_eq!(banned_next_tokens(&[4, 5], 1), vec![4, 5]);
    }
}
