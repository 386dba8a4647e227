using PgState.Engine.Resources;

namespace PgState.Modules.Hba;

/// <summary>Writing pg_hba.conf: the whole candidate (bytes), and the bytes the plan saw, so a file changed since is refused.
/// Every hba change of a plan carries the same write; applying it twice is a no-op.</summary>
public sealed record HbaWrite(string Path, byte[] Candidate, byte[] Expected)
{
    /// <summary>Live sessions (pg_stat_activity, read with the plan) the candidate would no longer admit: apply refuses them unless --allow-lockout.</summary>
    public IReadOnlyList<string> SessionLockouts { get; init; } = [];
}

/// <summary>
/// Diffs the desired rules against the live ones in order. First match wins, so order is part of
/// the state: rules kept in order (longest common subsequence) are unchanged, a rule present on both
/// sides out of order is a move, the rest are added or removed. Pure; unit-tested without a server.
/// </summary>
public static class HbaDiff
{
    public const string Module = "hba";

    /// <summary><paramref name="into"/>: the included file the managed block lives in, named beside new rules (null: pg_hba.conf itself).</summary>
    public static void Diff(IReadOnlyList<HbaRule> desired, IReadOnlyList<HbaFileRule> live, HbaWrite write, bool textDiffers, Diff<HbaWrite> diff, string? into = null)
    {
        var inFile = into is null ? "" : $" in {into}";
        var changes = 0;
        var keep = Lcs(desired.Select(r => r.Key).ToList(), live.Select(r => r.Rule.Key).ToList());
        var keptDesired = keep.Select(k => k.Desired).ToHashSet();
        var unmatchedLive = Enumerable.Range(0, live.Count).Except(keep.Select(k => k.Live)).ToList();

        for (var i = 0; i < desired.Count; i++)
        {
            if (keptDesired.Contains(i))
            {
                continue;
            }
            var moved = unmatchedLive.FirstOrDefault(j => live[j].Rule.Key == desired[i].Key, -1);
            if (moved >= 0)
            {
                unmatchedLive.Remove(moved);
                diff.Add($"hba.rule[{i}]", ChangeAction.Update,
                    $"{desired[i].Describe()} ({HbaFileSet.Where(live[moved])}, position {moved + 1})",
                    $"{desired[i].Describe()} (position {i + 1}{inFile})", Activation.Reload, write, "moved: the first matching rule wins, so order matters");
                changes++;
            }
            else
            {
                diff.Add($"hba.rule[{i}]", ChangeAction.Create, null, $"{desired[i].Describe()} (position {i + 1}{inFile})", Activation.Reload, write);
                changes++;
            }
        }
        foreach (var j in unmatchedLive)
        {
            var address = live[j].File is null ? $"hba.line[{live[j].Line}]" : $"hba.line[{live[j].File}:{live[j].Line}]";
            diff.Add(address, ChangeAction.Delete, $"{live[j].Rule.Describe()} ({HbaFileSet.Where(live[j])})", null, Activation.Reload, write);
            changes++;
        }
        if (changes == 0 && textDiffers)
        {
            diff.Add("hba.file", ChangeAction.Update, "comments or layout differ from the manifest",
                "rendered from the manifest", Activation.None, write, "the rules are the same; only comments or spacing change");
        }
        foreach (var (address, message) in Shadowed(desired))
        {
            diff.Warn(address, message);
        }
    }

    /// <summary>
    /// Rules that can never match because an earlier rule covers them. An earlier rule can only
    /// cover rule j if its databases hold j's first database (or all) and its users hold j's first
    /// user (or all), so each rule is compared only with the earlier rules in those buckets.
    /// </summary>
    public static IEnumerable<(string Address, string Message)> Shadowed(IReadOnlyList<HbaRule> rules)
    {
        const string all = "1:all";
        const string replication = "1:replication";
        var buckets = new Dictionary<(string, string), List<int>>();
        for (var j = 0; j < rules.Count; j++)
        {
            var rule = rules[j];
            if (rule.Databases.Count == 0 || rule.Users.Count == 0)
            {
                continue;
            }
            var db = rule.Databases[0].Key;
            var user = rule.Users[0].Key;
            var dbKeys = db == replication ? new[] { db } : [db, all];
            var userKeys = user == all ? new[] { user } : [user, all];
            var shadow = dbKeys.SelectMany(d => userKeys.Select(u => (d, u)))
                .SelectMany(k => buckets.TryGetValue(k, out var list) ? list : [])
                .Order()
                .FirstOrDefault(i => HbaMatcher.Shadows(rules[i], rule), -1);
            if (shadow >= 0)
            {
                yield return ($"hba.rule[{j}]",
                    $"can never match: hba.rule[{shadow}] ({rules[shadow].Describe()}) above it already matches every connection that hba.rule[{j}] ({rule.Describe()}) would");
            }
            foreach (var d in rule.Databases.Select(x => x.Key))
            {
                foreach (var u in rule.Users.Select(x => x.Key))
                {
                    if (!buckets.TryGetValue((d, u), out var list))
                    {
                        buckets[(d, u)] = list = [];
                    }
                    list.Add(j);
                }
            }
        }
    }

    /// <summary>
    /// Longest common subsequence of two key lists, as index pairs in order. The common prefix and
    /// suffix are matched first (a converged or lightly edited file costs O(n)); a small middle gets
    /// the exact dynamic programme, a large one a patience match (LIS over first occurrences).
    /// </summary>
    internal static List<(int Desired, int Live)> Lcs(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        var prefix = 0;
        while (prefix < a.Count && prefix < b.Count && a[prefix] == b[prefix])
        {
            prefix++;
        }
        var suffix = 0;
        while (suffix < a.Count - prefix && suffix < b.Count - prefix && a[a.Count - 1 - suffix] == b[b.Count - 1 - suffix])
        {
            suffix++;
        }
        var pairs = Enumerable.Range(0, prefix).Select(i => (i, i)).ToList();
        var (n, m) = (a.Count - prefix - suffix, b.Count - prefix - suffix);
        var middle = (long)n * m <= 4_000_000 ? Dynamic(a, b, prefix, n, m) : Patience(a, b, prefix, n, m);
        pairs.AddRange(middle);
        pairs.AddRange(Enumerable.Range(0, suffix).Select(k => (a.Count - suffix + k, b.Count - suffix + k)));
        return pairs;
    }

    private static IEnumerable<(int, int)> Dynamic(IReadOnlyList<string> a, IReadOnlyList<string> b, int offset, int n, int m)
    {
        var table = new int[n + 1, m + 1];
        for (var i = n - 1; i >= 0; i--)
        {
            for (var j = m - 1; j >= 0; j--)
            {
                table[i, j] = a[offset + i] == b[offset + j] ? table[i + 1, j + 1] + 1 : Math.Max(table[i + 1, j], table[i, j + 1]);
            }
        }
        for (int i = 0, j = 0; i < n && j < m;)
        {
            if (a[offset + i] == b[offset + j])
            {
                yield return (offset + i, offset + j);
                i++;
                j++;
            }
            else if (table[i + 1, j] >= table[i, j + 1])
            {
                i++;
            }
            else
            {
                j++;
            }
        }
    }

    private static IEnumerable<(int, int)> Patience(IReadOnlyList<string> a, IReadOnlyList<string> b, int offset, int n, int m)
    {
        var positions = new Dictionary<string, Queue<int>>(StringComparer.Ordinal);
        for (var j = 0; j < m; j++)
        {
            if (!positions.TryGetValue(b[offset + j], out var q))
            {
                positions[b[offset + j]] = q = new Queue<int>();
            }
            q.Enqueue(j);
        }
        var candidates = new List<(int I, int J)>();
        for (var i = 0; i < n; i++)
        {
            if (positions.TryGetValue(a[offset + i], out var q) && q.Count > 0)
            {
                candidates.Add((i, q.Dequeue()));
            }
        }
        // Longest increasing subsequence of J over candidates (already increasing in I).
        var tails = new List<int>();
        var previous = new int[candidates.Count];
        for (var k = 0; k < candidates.Count; k++)
        {
            int lo = 0, hi = tails.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (candidates[tails[mid]].J < candidates[k].J)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            previous[k] = lo > 0 ? tails[lo - 1] : -1;
            if (lo == tails.Count)
            {
                tails.Add(k);
            }
            else
            {
                tails[lo] = k;
            }
        }
        var chain = new List<(int, int)>();
        for (var k = tails.Count > 0 ? tails[^1] : -1; k >= 0; k = previous[k])
        {
            chain.Add((offset + candidates[k].I, offset + candidates[k].J));
        }
        chain.Reverse();
        return chain;
    }
}
