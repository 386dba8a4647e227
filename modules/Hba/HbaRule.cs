using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PgState.Modules.Hba;

public enum HbaNameKind
{
    /// <summary>A literal database or role name (quoted or not in the file).</summary>
    Name,

    /// <summary>all, sameuser, samerole, samegroup, replication — only when unquoted and exactly so.</summary>
    Keyword,

    /// <summary>+role: members of a role (user field, unquoted).</summary>
    Group,

    /// <summary>@file: names read from a file (unquoted).</summary>
    File,

    /// <summary>/regex (PostgreSQL 16 and later).</summary>
    Regex,
}

/// <summary>
/// One entry of a database or user list as PostgreSQL reads it: keywords only when unquoted and
/// written exactly (PostgreSQL compares case-sensitively: "Replication" is a database name, "all"
/// in quotes is a role named all).
/// </summary>
public sealed record HbaName(HbaNameKind Kind, string Value)
{
    public static readonly string[] DatabaseKeywords = ["all", "sameuser", "samerole", "samegroup", "replication"];
    public static readonly string[] UserKeywords = ["all"];

    /// <summary>PostgreSQL's MAX_TOKEN is 256 bytes with its terminator.</summary>
    public const int MaxTokenBytes = 255;

    // Computed once, with the name (no `with` changes a name): rules are sorted, deduplicated and diffed by it.
    public string Key { get; } = $"{(int)Kind}:{Value}";

    public bool IsKeyword(string keyword) => Kind == HbaNameKind.Keyword && Value == keyword;

    /// <summary>A name as a manifest writes it: a keyword, +group, @file, /regex, "quoted" for a literal that looks like one, else a name.</summary>
    public static HbaName FromManifest(string text, bool userField)
    {
        if (text.Length >= 2 && text[0] == '"' && text[^1] == '"')
        {
            return new HbaName(HbaNameKind.Name, text[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal));
        }
        return FromToken(text, quoted: false, userField);
    }

    /// <summary>A token as PostgreSQL's tokenizer hands it over.</summary>
    public static HbaName FromToken(string text, bool quoted, bool userField)
    {
        if (text.Length > 1 && text[0] == '/')
        {
            return new HbaName(HbaNameKind.Regex, text);
        }
        if (!quoted)
        {
            if ((userField ? UserKeywords : DatabaseKeywords).Contains(text, StringComparer.Ordinal))
            {
                return new HbaName(HbaNameKind.Keyword, text);
            }
            if (userField && text.Length > 1 && text[0] == '+')
            {
                return new HbaName(HbaNameKind.Group, text[1..]);
            }
            if (text.Length > 1 && text[0] == '@')
            {
                return new HbaName(HbaNameKind.File, text[1..]);
            }
        }
        return new HbaName(HbaNameKind.Name, text);
    }

    /// <summary>Why this name cannot be written to pg_hba.conf so that PostgreSQL reads it back the same, or null.</summary>
    public string? Problem()
    {
        var rendered = Kind switch
        {
            HbaNameKind.Group => "+" + Value,
            HbaNameKind.File => "@" + Value,
            _ => Value,
        };
        if (Encoding.UTF8.GetByteCount(rendered) > MaxTokenBytes)
        {
            return $"'{rendered}' is longer than the {MaxTokenBytes} bytes PostgreSQL reads in one pg_hba.conf token";
        }
        if (Kind is HbaNameKind.Group or HbaNameKind.File && (Value.Length == 0 || !HbaRule.IsPlainToken(Value)))
        {
            return $"'{rendered}' cannot be written: a +group or @file must be one plain token (no spaces, commas, quotes or #); quoting it would make it a literal name";
        }
        if (Kind == HbaNameKind.Name && Value.StartsWith('/'))
        {
            return $"the name '{Value}' starts with '/', which PostgreSQL 16 and later read as a regular expression";
        }
        if (Kind == HbaNameKind.Name && Value.Length == 0)
        {
            return "an empty name";
        }
        return null;
    }

    /// <summary>The token as pg_hba.conf must hold it.</summary>
    public string Render() => Kind switch
    {
        HbaNameKind.Keyword => Value,
        HbaNameKind.Group => "+" + Value,
        HbaNameKind.File => "@" + Value,
        HbaNameKind.Regex => HbaRule.QuoteIfNeeded(Value),
        // A literal that reads as a keyword in any case is quoted: PostgreSQL would read it as the
        // keyword when it is written exactly, and a reader would mistake it otherwise.
        _ => DatabaseKeywords.Contains(Value, StringComparer.OrdinalIgnoreCase) || Value.StartsWith('+') || Value.StartsWith('@')
            ? HbaRule.Quote(Value)
            : HbaRule.QuoteIfNeeded(Value),
    };

    public override string ToString() => Render();
}

/// <summary>
/// One pg_hba.conf rule, normalised so that equal rules compare equal: database and user lists as
/// sets (PostgreSQL tests membership), 192.168.1.50/32 = 192.168.1.50 255.255.255.255, options sorted.
/// </summary>
public sealed record HbaRule(
    string Type,
    IReadOnlyList<HbaName> Databases,
    IReadOnlyList<HbaName> Users,
    string? Address,
    string Method,
    IReadOnlyList<KeyValuePair<string, string>> Options,
    string? Comment = null)
{
    private string? _key;

    /// <summary>The identity of a rule for diffing: everything except the comment.</summary>
    public string Key => _key ??= string.Join('|', Type, string.Join(',', Databases.Select(d => d.Key)), string.Join(',', Users.Select(u => u.Key)),
        Address ?? "", Method, string.Join(',', Options.Select(o => o.Key + "=" + o.Value)));

    public static HbaRule Create(string type, IEnumerable<HbaName> databases, IEnumerable<HbaName> users, string? address, string method,
        IEnumerable<KeyValuePair<string, string>> options, string? comment = null) =>
        new(type,
            [.. databases.DistinctBy(n => n.Key).OrderBy(n => n.Key, StringComparer.Ordinal)],
            [.. users.DistinctBy(n => n.Key).OrderBy(n => n.Key, StringComparer.Ordinal)],
            address is null ? null : NormalizeAddress(address),
            method,
            [.. options.OrderBy(o => o.Key, StringComparer.Ordinal)],
            comment);

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

    // 010.0.0.1 reads as 8.0.0.1 to inet_aton and as 10.0.0.1 to a person: refused rather than guessed.
    private static bool LeadingZeroOctet(string ipText, IPAddress parsed) =>
        parsed.AddressFamily == AddressFamily.InterNetwork && ipText.Split('.').Any(o => o.Length > 1 && o[0] == '0');

    public static bool TryParseCidr(string text, out IPAddress address, out int bits)
    {
        address = IPAddress.None;
        bits = 0;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var ipText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(ipText, out var parsed) || (ipText.Count(c => c == '.') != 3 && parsed.AddressFamily == AddressFamily.InterNetwork)
            || ipText.Contains('%', StringComparison.Ordinal) || LeadingZeroOctet(ipText, parsed))
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
            sb.Append(' ').Append(OptionToken(key, value));
        }
        return sb.ToString().TrimEnd();
    }

    /// <summary>Short form for plans: host replication backup_user 192.168.1.50/32 scram-sha-256.</summary>
    public string Describe() =>
        string.Join(' ', new[] { Type, JoinNames(Databases), JoinNames(Users), Address, Method }
            .Concat(Options.Select(o => OptionToken(o.Key, o.Value))).Where(s => !string.IsNullOrEmpty(s)));

    /// <summary>key=value; the value quoted when it needs it (the quotes go round the whole token, as PostgreSQL strips them).</summary>
    public static string OptionToken(string key, string value) =>
        IsPlainToken(value) && value.Length > 0 ? $"{key}={value}" : $"{key}={Quote(value)}";

    private static string JoinNames(IEnumerable<HbaName> names) => string.Join(',', names.Select(n => n.Render()));

    /// <summary>A token PostgreSQL reads as-is unquoted: no blank, comma, quote, #, and not ending in a backslash
    /// (PostgreSQL 16 joins a line that ends in one with the next).</summary>
    public static bool IsPlainToken(string value) =>
        value.Length > 0 && value.All(c => c is not (' ' or '\t' or '\r' or ',' or '"' or '#')) && !value.EndsWith('\\');

    public static string QuoteIfNeeded(string value) => IsPlainToken(value) ? value : Quote(value);

    public static string Quote(string value) => "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
