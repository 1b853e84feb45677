"""MASt3R geometry backend: lift3d's own MASt3R network, pair inference, matches, alignment."""
