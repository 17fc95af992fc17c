"""Training losses: generic GAN helpers (:mod:`.gan`), pluggable perceptual losses
(:mod:`.perceptual`) and the HiFiC objective (:mod:`.hific`, METHODS §4.2)."""
