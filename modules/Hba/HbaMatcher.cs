using System.Net;

namespace PgState.Modules.Hba;

/// <summary>A connection to test against rules: what `pgstate hba test`, the lock-out guard and the live-session check ask.</summary>
public sealed record HbaConnection(string Type, string Database, string User, IPAddress? Address, bool Ssl = false, bool GssEnc = false, IReadOnlySet<string>? Roles = null)
{
    public bool IsReplication => Database == "replication";

    public string Describe() => Type == "local"
        ? $"local, database {Database}, user {User}"
        : $"{Type}{(Ssl ? " (ssl)" : "")} from {Address}, database {Database}, user {User}";
}

/// <summary>First-match evaluation of rules, as PostgreSQL's check_hba does it (without DNS, @files or regular expressions).</summary>
public static class HbaMatcher
{
    public static int? FirstMatch(IReadOnlyList<HbaRule> rules, HbaConnection connection)
    {
        for (var i = 0; i < rules.Count; i++)
        {
            if (Matches(rules[i], connection))
            {
                return i;
            }
        }
        return null;
    }

    public static bool Matches(HbaRule rule, HbaConnection c)
    {
        var typeOk = rule.Type switch
        {
            "local" => c.Type == "local",
            "host" => c.Type != "local",
            "hostssl" => c.Type != "local" && c.Ssl,
            "hostnossl" => c.Type != "local" && !c.Ssl,
            "hostgssenc" => c.Type != "local" && c.GssEnc,
            "hostnogssenc" => c.Type != "local" && !c.GssEnc,
            _ => false,
        };
        return typeOk && DatabaseMatches(rule, c) && UserMatches(rule, c) && AddressMatches(rule, c);
    }

    private static bool DatabaseMatches(HbaRule rule, HbaConnection c) => rule.Databases.Any(d => d.Kind switch
    {
        // "all" does not match replication connections; only the replication keyword does.
        HbaNameKind.Keyword => d.Value switch
        {
            "all" => !c.IsReplication,
            "replication" => c.IsReplication,
            "sameuser" => !c.IsReplication && c.Database == c.User,
            _ => !c.IsReplication && (c.Database == c.User || (c.Roles?.Contains(c.Database) ?? false)),
        },
        HbaNameKind.Name => !c.IsReplication && d.Value == c.Database,
        _ => false,
    });

    private static bool UserMatches(HbaRule rule, HbaConnection c) => rule.Users.Any(u => u.Kind switch
    {
        HbaNameKind.Keyword => true,
        HbaNameKind.Name => u.Value == c.User,
        HbaNameKind.Group => u.Value == c.User || (c.Roles?.Contains(u.Value) ?? false),
        _ => false,
    });

    private static bool AddressMatches(HbaRule rule, HbaConnection c)
    {
        if (rule.Type == "local")
        {
            return true;
        }
        if (c.Address is null || rule.Address is null)
        {
            return false;
        }
        return rule.Address switch
        {
            "all" => true,
            // samehost/samenet depend on the server's interfaces: loopback is the case we can know.
            "samehost" or "samenet" => IPAddress.IsLoopback(c.Address),
            _ => HbaRule.TryParseCidr(rule.Address, out var network, out var bits) && Contains(network, bits, c.Address),
        };
    }

    public static bool Contains(IPAddress network, int bits, IPAddress address)
    {
        var a = network.GetAddressBytes();
        var b = (address.IsIPv4MappedToIPv6 && network.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? address.MapToIPv4() : address).GetAddressBytes();
        if (a.Length != b.Length)
        {
            return false;
        }
        for (var i = 0; i < a.Length && bits > 0; i++, bits -= 8)
        {
            var mask = bits >= 8 ? 0xFF : (byte)(0xFF << (8 - bits));
            if ((a[i] & mask) != (b[i] & mask))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// True when <paramref name="earlier"/> matches every connection <paramref name="later"/> could:
    /// same or wider type, database, user and address. Then <paramref name="later"/> never matches.
    /// </summary>
    public static bool Shadows(HbaRule earlier, HbaRule later)
    {
        var typeCovers = earlier.Type == later.Type || (earlier.Type == "host" && later.Type != "local");
        if (!typeCovers)
        {
            return false;
        }
        bool Has(IReadOnlyList<HbaName> names, HbaName n) => names.Any(x => x.Key == n.Key);
        var replication = new HbaName(HbaNameKind.Keyword, "replication");
        var all = new HbaName(HbaNameKind.Keyword, "all");
        var laterHasReplication = Has(later.Databases, replication);
        var laterOthers = later.Databases.Where(d => d.Key != replication.Key).ToList();
        var dbCovers = (!laterHasReplication || Has(earlier.Databases, replication))
            && (laterOthers.Count == 0 || Has(earlier.Databases, all) || laterOthers.All(d => Has(earlier.Databases, d)));
        var userCovers = Has(earlier.Users, all) || later.Users.All(u => Has(earlier.Users, u));
        var addressCovers = later.Type == "local" || earlier.Address == "all" || earlier.Address == later.Address
            || (earlier.Address is not null && later.Address is not null
                && HbaRule.TryParseCidr(earlier.Address, out var n1, out var b1)
                && HbaRule.TryParseCidr(later.Address, out var n2, out var b2)
                && b1 <= b2 && Contains(n1, b1, n2));
        return dbCovers && userCovers && addressCovers;
    }
}
