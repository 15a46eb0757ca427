"""Assessment (アセスメント), support plans (支援プラン), reviews (プラン評価) and requests
to the other pillars (参加支援・アウトリーチ) of a coordination case."""
