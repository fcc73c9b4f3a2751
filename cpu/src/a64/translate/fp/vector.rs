//! AdvSIMD floating point: vector, scalar pairwise and by-element forms.
