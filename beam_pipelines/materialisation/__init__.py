"""Materialisation: images read and decoded once per sample, region crops cut from them."""
