"""The latent-space explorer: a self-contained page that runs a trained VAE's or autoencoder's encoder
and decoder in the browser (page.py makes it from page.html, model.js and page.js). Below lab/, which
writes it beside a run's figures; it imports only models/ and nn/."""
