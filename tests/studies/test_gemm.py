"""The GEMM-bound limit: the products of a training step read off a model's layers, their FLOPs, their time."""

import numpy as np

from models import VAE, AutoEncoder
from nn import Generator
from studies.gemm import Product, gemm_seconds, step_products, steps_per_epoch


def test_flops_of_a_product_are_2mkn_whichever_operand_is_read_transposed():
    assert Product("a @ b", (2, 3), (3, 4)).flops() == 2 * 2 * 3 * 4
    assert Product("a.T @ b", (3, 2), (3, 4), "a").mkn() == (2, 3, 4)
    assert Product("a @ b.T", (2, 3), (4, 3), "b").mkn() == (2, 3, 4)


def test_the_lab_vae_step_has_14_products_and_the_flops_counted_by_hand():
    # Per image, in multiply-adds: forward 784*512 + 2*(512*2) + 2*512 + 512*784 = 805888;
    # the weight gradients the same again; the input gradients all but the first layer's,
    # 2*(2*512) + 512*2 + 784*512 = 404480. FLOPs = 2 * 128 images * (2*805888 + 404480).
    products = step_products(VAE(784, (512,), 2, rng=Generator(0)), 128)
    assert len(products) == 5 + 5 + 4
    assert sum(p.flops() for p in products) == 516_161_536


def test_the_products_are_read_off_whatever_model_is_given():
    # A deeper VAE and an AE: every Dense layer counts, in the shapes the model has.
    deeper = VAE(10, (8, 6), 3, rng=Generator(0))  # encoder 10-8-6, heads 6-3 twice, decoder 3-6-8-10
    dense = [(10, 8), (8, 6), (6, 3), (6, 3), (3, 6), (6, 8), (8, 10)]
    products = step_products(deeper, 4)
    assert len(products) == 3 * len(dense) - 1  # the first layer has no input gradient
    assert sum(p.flops() for p in products) == 2 * 4 * (3 * sum(i * o for i, o in dense) - 10 * 8)
    assert len(step_products(AutoEncoder(10, (8,), 2, rng=Generator(0)), 4)) == 4 * 3 - 1


def test_an_epoch_has_full_batches_and_one_smaller_last_batch():
    assert steps_per_epoch(60000, 128) == {128: 468, 96: 1}  # ceil(60000 / 128) = 469 steps
    assert steps_per_epoch(1280, 128) == {128: 10}


def test_gemm_seconds_times_the_products_and_counts_their_flops():
    products = [Product("a @ b", (2, 3), (3, 4)), Product("a.T @ b", (5, 2), (5, 6), "a")]
    seconds, flops = gemm_seconds(np, products, repeats=3)
    assert seconds > 0
    assert flops == 2 * 2 * 3 * 4 + 2 * 2 * 5 * 6
