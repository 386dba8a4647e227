using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PgState.Modules.Hba;

/// <summary>
/// One pg_hba.conf rule, normalised so that equal rules compare equal: keywords lower-cased,
/// database and user lists as sets (PostgreSQL tests membership, so order does not matter),
/// 192.168.1.50/32 = 192.168.1.50 255.255.255.255, options sorted.
/// </summary>
public sealed record HbaRule(
    string Type,
    IReadOnlyList<string> Databases,
    IReadOnlyList<string> Users,
    string? Address,
    string Method,
    IReadOnlyList<KeyValuePair<string, string>> Options,
    string? Comment = null)
{
    public static readonly string[] Keywords = ["all", "sameuser", "samerole", "samegroup", "replication"];

    private string? _key;

    /// <summary>The identity of a rule for diffing: everything except the comment.</summary>
    public string Key => _key ??= string.Join('|', Type, string.Join(',', Databases), string.Join(',', Users), Address ?? "", Method,
        string.Join(',', Options.Select(o => o.Key + "=" + o.Value)));

    public static HbaRule Create(string type, IEnumerable<string> databases, IEnumerable<string> users, string? address, string method,
        IEnumerable<KeyValuePair<string, string>> options, string? comment = null) =>
        new(type.ToLowerInvariant(),
            NormalizeNames(databases),
            NormalizeNames(users),
            address is null ? null : NormalizeAddress(address),
            method.ToLowerInvariant(),
            [.. options.Select(o => KeyValuePair.Create(o.Key.ToLowerInvariant(), o.Value)).OrderBy(o => o.Key, StringComparer.Ordinal)],
            comment);

    private static IReadOnlyList<string> NormalizeNames(IEnumerable<string> names) =>
        [.. names.Select(n => Keywords.Contains(n, StringComparer.OrdinalIgnoreCase) ? n.ToLowerInvariant() : n)
                 .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>CIDR or "address mask" to canonical CIDR; keywords and host names lower-cased.</summary>
    public static string NormalizeAddress(string address)
    {
        var text = address.Trim();
        var parts = text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 2 && IPAddress.TryParse(parts[0], out var ip) && IPAddress.TryParse(parts[1], out var mask)
            && PrefixLength(mask) is { } maskBits)
        {
            return $"{ip}/{maskBits}";
        }
        if (TryParseCidr(text, out var network, out var bits))
        {
            return $"{network}/{bits}";
        }
        return text.ToLowerInvariant();
    }

    public static bool TryParseCidr(string text, out IPAddress address, out int bits)
    {
        address = IPAddress.None;
        bits = 0;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var ipText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(ipText, out var parsed) || (ipText.Count(c => c == '.') != 3 && parsed.AddressFamily == AddressFamily.InterNetwork))
        {
            return false;
        }
        var max = parsed.AddressFamily == AddressFamily.InterNetworkV6 ? 128 : 32;
        if (slash < 0)
        {
            address = parsed;
            bits = max;
            return true;
        }
        if (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out bits) || bits > max)
        {
            return false;
        }
        address = parsed;
        return true;
    }

    /// <summary>The prefix length of a contiguous netmask, or null (255.0.255.0 is not one).</summary>
    public static int? PrefixLength(IPAddress mask)
    {
        var bytes = mask.GetAddressBytes();
        var bits = 0;
        var ended = false;
        foreach (var b in bytes)
        {
            for (var i = 7; i >= 0; i--)
            {
                var set = (b >> i & 1) == 1;
                if (set && ended)
                {
                    return null;
                }
                if (set)
                {
                    bits++;
                }
                else
                {
                    ended = true;
                }
            }
        }
        return bits;
    }

    /// <summary>The rule as a pg_hba.conf line, columns aligned like the stock file.</summary>
    public string ToLine()
    {
        var sb = new StringBuilder();
        sb.Append(Type.PadRight(8)).Append(' ')
          .Append(JoinNames(Databases).PadRight(16)).Append(' ')
          .Append(JoinNames(Users).PadRight(16)).Append(' ');
        if (Type != "local")
        {
            sb.Append((Address ?? "").PadRight(24)).Append(' ');
        }
        else
        {
            sb.Append(new string(' ', 25));
        }
        sb.Append(Method);
        foreach (var (key, value) in Options)
        {
            sb.Append(' ').Append(key).Append('=').Append(QuoteIfNeeded(value));
        }
        return sb.ToString().TrimEnd();
    }

    /// <summary>Short form for plans: host replication backup_user 192.168.1.50/32 scram-sha-256.</summary>
    public string Describe() =>
        string.Join(' ', new[] { Type, JoinNames(Databases), JoinNames(Users), Address, Method }
            .Concat(Options.Select(o => $"{o.Key}={QuoteIfNeeded(o.Value)}")).Where(s => !string.IsNullOrEmpty(s)));

    private static string JoinNames(IEnumerable<string> names) => string.Join(',', names.Select(QuoteIfNeeded));

    private static string QuoteIfNeeded(string value) =>
        value.Length > 0 && value.All(c => !char.IsWhiteSpace(c) && c is not ',' and not '"' and not '#')
            ? value
            : "\"" + value.Replace("\"", "\"\"") + "\"";
}
