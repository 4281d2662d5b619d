"""torch's side: autograd's backward(v), forward-mode J·u and double-backward H·w."""
