using System.Security.Cryptography;
using System.Text;

namespace PgState.Modules.Replication;

/// <summary>
/// SCRAM-SHA-256 verifiers as PostgreSQL stores them (RFC 7677 / 5802):
/// SCRAM-SHA-256$&lt;iterations&gt;:&lt;salt&gt;$&lt;StoredKey&gt;:&lt;ServerKey&gt;. Computing it here means
/// the cleartext never travels in SQL, and a stored verifier can be checked without revealing it.
/// </summary>
public static class Scram
{
    public const int DefaultIterations = 4096;

    public static string Verifier(string password, byte[] salt, int iterations)
    {
        // PostgreSQL SASLpreps the password first, and uses the raw bytes when SASLprep refuses it.
        var salted = Rfc2898DeriveBytes.Pbkdf2(Saslprep.SaslPrep.PasswordBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }

    public static string NewVerifier(string password) => Verifier(password, RandomNumberGenerator.GetBytes(16), DefaultIterations);

    /// <summary>True when <paramref name="stored"/> is a SCRAM verifier of <paramref name="password"/>.</summary>
    public static bool Matches(string stored, string password)
    {
        if (!TryParse(stored, out var iterations, out var salt))
        {
            return false;
        }
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Verifier(password, salt, iterations)), Encoding.ASCII.GetBytes(stored));
    }

    public static bool TryParse(string stored, out int iterations, out byte[] salt)
    {
        iterations = 0;
        salt = [];
        var parts = stored.Split('$');
        if (parts.Length != 3 || parts[0] != "SCRAM-SHA-256")
        {
            return false;
        }
        var head = parts[1].Split(':');
        if (head.Length != 2 || !int.TryParse(head[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out iterations) || iterations is < 1 or > 10_000_000)
        {
            return false;
        }
        try
        {
            salt = Convert.FromBase64String(head[1]);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
