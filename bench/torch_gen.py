"""PyTorch twins of the generative examples: examples/fashion_autoencoder.dln,
examples/fashion_vae.dln and examples/fashion_gan.dln.

Each twin has the .dln's layers, initialisation (torch's default, the .dln's
torch_default), loss, optimiser and batch, and its modules and attributes
are named after the .dln's bindings and block instances, so that a dlnc
checkpoint's tensors (`dec.fc3.weight`, `G.fc1_2.running_mean`, ...) load
into it with load_state_dict(strict=True).

    make(name) -> (module, step, evaluate)

step(x) trains on one batch x (float32 [n, 784] in [0, 1]) and returns its
losses as a dict of floats, the first entry being the workload's "loss"
(the per-image mean, as dlnc reports it); evaluate(x) returns the same
losses on x without training (None for the GAN).  bench/torch_train.py
times step (for bench/run), scripts/torch_twin.py trains, evaluates and
samples.  torch is imported by the functions only: bench/run reads
torch_train.SPECS without it.
"""

PIXELS = 784


def _modules():
    import torch
    from torch import nn
    F = nn.functional

    class Autoencoder(nn.Module):
        """784-256-64-256-784: ReLU, a linear 64-wide code, sigmoid output."""

        def __init__(self):
            super().__init__()
            self.enc1 = nn.Linear(PIXELS, 256)
            self.code = nn.Linear(256, 64)
            self.dec1 = nn.Linear(64, 256)
            self.recon = nn.Linear(256, PIXELS)

        def forward(self, x):
            h = F.relu(self.enc1(x))
            return torch.sigmoid(self.recon(F.relu(self.dec1(self.code(h)))))

    class Decoder(nn.Module):
        """The VAE's block Decoder: latent -> 400 ReLU -> 784 sigmoid."""

        def __init__(self, latent=20, hidden=400):
            super().__init__()
            self.fc3 = nn.Linear(latent, hidden)
            self.fc4 = nn.Linear(hidden, PIXELS)

        def forward(self, z):
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    class VAE(nn.Module):
        """pytorch/examples/vae: fc1 784-400 ReLU, fc21/fc22 (here mu, logvar)
        400-20, z = mu + exp(logvar / 2) * eps, decoder 20-400-784."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(PIXELS, 400)
            self.mu = nn.Linear(400, 20)
            self.logvar = nn.Linear(400, 20)
            self.dec = Decoder()

        def forward(self, x):
            h = F.relu(self.fc1(x))
            mu, logvar = self.mu(h), self.logvar(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            return self.dec(z), mu, logvar

    class Generator(nn.Module):
        """100 -> 256 -> 512 (dense without bias, batch norm, ReLU) -> 784 sigmoid.
        A binding's second layer is NAME_2 in dlnc: fc1 = relu(batch_norm(
        dense(z, 256, bias = false))) holds fc1 (the dense) and fc1_2 (the norm)."""

        def __init__(self, noise=100):
            super().__init__()
            self.fc1 = nn.Linear(noise, 256, bias=False)
            self.fc1_2 = nn.BatchNorm1d(256)
            self.fc2 = nn.Linear(256, 512, bias=False)
            self.fc2_2 = nn.BatchNorm1d(512)
            self.fc3 = nn.Linear(512, PIXELS)

        def forward(self, z):
            h = F.relu(self.fc1_2(self.fc1(z)))
            h = F.relu(self.fc2_2(self.fc2(h)))
            return torch.sigmoid(self.fc3(h))

    class Discriminator(nn.Module):
        """784 -> 512 -> 256 (leaky ReLU 0.2, dropout 0.3) -> 1 logit."""

        def __init__(self, slope=0.2, p=0.3):
            super().__init__()
            self.slope, self.p = slope, p
            self.fc1 = nn.Linear(PIXELS, 512)
            self.fc2 = nn.Linear(512, 256)
            self.fc3 = nn.Linear(256, 1)

        def forward(self, x):
            h = F.dropout(F.leaky_relu(self.fc1(x), self.slope), self.p, self.training)
            h = F.dropout(F.leaky_relu(self.fc2(h), self.slope), self.p, self.training)
            return self.fc3(h)

    class GAN(nn.Module):
        def __init__(self):
            super().__init__()
            self.G = Generator()
            self.D = Discriminator()

    return {"autoencoder": Autoencoder, "vae": VAE, "gan": GAN}


def vae_losses(recon, x, mu, logvar):
    """BCE summed over the pixels plus the KL term, each averaged over the
    batch: pytorch/examples/vae's loss divided by the batch size, which is
    the .dln's binary_cross_entropy(recon, x) * 784 + kl_normal(mu, logvar)."""
    import torch
    n = x.shape[0]
    bce = torch.nn.functional.binary_cross_entropy(recon, x, reduction="sum") / n
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / n
    return bce + kl, bce, kl


def make(name, spec):
    """(module, step, evaluate) of the twin `name`, built with the current
    torch seed."""
    import torch
    F = torch.nn.functional
    model = _modules()[name]()
    model.train()

    if name == "autoencoder":
        opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])

        def ae_loss(x):
            return F.binary_cross_entropy(model(x), x) * PIXELS

        def step(x):
            opt.zero_grad(set_to_none=True)
            loss = ae_loss(x)
            loss.backward()
            opt.step()
            return {"loss": float(loss)}

        def evaluate(x):
            with torch.no_grad():
                return {"loss": float(ae_loss(x))}
        return model, step, evaluate

    if name == "vae":
        opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])

        def step(x):
            opt.zero_grad(set_to_none=True)
            loss, bce, kl = vae_losses(*_recon_first(model(x), x))
            loss.backward()
            opt.step()
            return {"loss": float(loss), "bce": float(bce), "kl": float(kl)}

        def evaluate(x):
            # pytorch/examples/vae's test: eval mode (no difference here), z
            # still drawn, as dlnc's eval draws its noise.
            model.eval()
            with torch.no_grad():
                loss, bce, kl = vae_losses(*_recon_first(model(x), x))
            model.train()
            return {"loss": float(loss), "bce": float(bce), "kl": float(kl)}
        return model, step, evaluate

    assert name == "gan"
    G, D = model.G, model.D
    betas = (spec["beta1"], 0.999)
    opt_d = torch.optim.Adam(D.parameters(), lr=spec["lr"], betas=betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=spec["lr"], betas=betas)
    d_params = list(D.parameters())

    def step(x):
        # torch's DCGAN loop: one noise draw per batch, G(z) computed once;
        # D's step on real and detached fake, then G's through D after D's
        # step.  D's parameters need no gradient during G's step (DCGAN's
        # loop computes it and throws it away; skipping it is fairer to torch).
        n = x.shape[0]
        fake = G(torch.randn(n, spec["noise"]))
        d_real, d_fake = D(x), D(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for p in d_params:
            p.requires_grad_(False)
        d_out = D(fake)
        g_loss = F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)
        return {"loss": float(d_loss), "d_loss": float(d_loss), "g_loss": float(g_loss)}
    return model, step, None


def _recon_first(out, x):
    recon, mu, logvar = out
    return recon, x, mu, logvar


def sample_gan(model, count, noise, mode="eval", seed=1, batch=1000):
    """count generated images as uint8 [count, 28, 28]: the generator on
    standard normal noise, values x 255 (the inverse of the data's scale
    1/255) rounded and clamped to 0..255.  mode "eval" uses batch norm's
    running statistics, "train" each batch's own statistics (the running
    statistics are restored afterwards).  The noise comes from its own
    generator seeded with seed: the same samples from the same weights,
    whatever drew random numbers before."""
    import torch
    G = model.G
    saved = {k: v.clone() for k, v in G.state_dict().items()}
    G.train(mode == "train")
    out, gen = [], torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i in range(0, count, batch):
            out.append(G(torch.randn(min(batch, count - i), noise, generator=gen)))
    G.load_state_dict(saved)
    G.train()
    x = torch.cat(out).mul(255).round().clamp(0, 255).to(torch.uint8)
    return x.reshape(count, 28, 28).numpy()


def sample_vae(model, count, latent=20, seed=1, batch=1000):
    """The VAE's decoder on standard normal z, as uint8 [count, 28, 28]."""
    import torch
    out, gen = [], torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i in range(0, count, batch):
            out.append(model.dec(torch.randn(min(batch, count - i), latent, generator=gen)))
    x = torch.cat(out).mul(255).round().clamp(0, 255).to(torch.uint8)
    return x.reshape(count, 28, 28).numpy()
