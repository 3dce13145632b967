"""AES-256-CBC message encryption of WeChat's compatible and safe modes.

plaintext = 16 random bytes | 4-byte big-endian length | message (UTF-8) | appid,
padded with PKCS#7 over a 32-byte block (pads of 1..32 bytes), then base64.
key = base64(EncodingAESKey + "="), IV = key[:16].
"""
import base64
import binascii
import os
import struct
from typing import Optional, Tuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_SIZE = 32
RANDOM_PREFIX_SIZE = 16


class CryptoError(ValueError):
    """The ciphertext is not a valid WeChat message."""


class AppIdMismatch(CryptoError):
    """The message decrypted fine but was meant for another account."""


def decode_aes_key(encoding_aes_key: str) -> bytes:
    if not encoding_aes_key or len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("EncodingAESKey is not valid base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    amount = block_size - len(data) % block_size  # 1..block_size, never 0
    return data + bytes([amount]) * amount


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    if not data or len(data) % 16:
        raise CryptoError("ciphertext length is not a multiple of the AES block")
    amount = data[-1]
    if not 1 <= amount <= block_size or amount > len(data):
        raise CryptoError("bad padding")
    if data[-amount:] != bytes([amount]) * amount:
        raise CryptoError("bad padding")
    return data[:-amount]


class MessageCrypto:
    def __init__(self, encoding_aes_key: str, appid: str):
        self.key = decode_aes_key(encoding_aes_key)
        self.appid = appid

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, random_prefix: Optional[bytes] = None) -> str:
        """Base64 ciphertext of `message` for our appid (`random_prefix` only for golden tests)."""
        prefix = os.urandom(RANDOM_PREFIX_SIZE) if random_prefix is None else random_prefix
        if len(prefix) != RANDOM_PREFIX_SIZE:
            raise ValueError("random prefix must be 16 bytes")
        body = message.encode("utf-8")
        plain = prefix + struct.pack(">I", len(body)) + body + self.appid.encode("utf-8")
        encryptor = self._cipher().encryptor()
        cipher_bytes = encryptor.update(pkcs7_pad(plain)) + encryptor.finalize()
        return base64.b64encode(cipher_bytes).decode("ascii")

    def decrypt_raw(self, encrypted: str) -> Tuple[bytes, str]:
        """(message bytes, appid found in the plaintext); raises CryptoError."""
        try:
            cipher_bytes = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("Encrypt is not base64") from exc
        if not cipher_bytes or len(cipher_bytes) % 16:
            raise CryptoError("ciphertext length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        plain = pkcs7_unpad(decryptor.update(cipher_bytes) + decryptor.finalize())
        if len(plain) < RANDOM_PREFIX_SIZE + 4:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[RANDOM_PREFIX_SIZE:RANDOM_PREFIX_SIZE + 4])
        start = RANDOM_PREFIX_SIZE + 4
        if start + length > len(plain):
            raise CryptoError("message length exceeds plaintext")
        message = plain[start:start + length]
        try:
            appid = plain[start + length:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError("appid is not UTF-8") from exc
        return message, appid

    def decrypt(self, encrypted: str) -> bytes:
        """The message bytes; raises AppIdMismatch when it was encrypted for another appid."""
        message, appid = self.decrypt_raw(encrypted)
        if appid != self.appid:
            raise AppIdMismatch("appid mismatch")
        return message
