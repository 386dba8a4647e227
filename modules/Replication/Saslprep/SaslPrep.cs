using System.Globalization;
using System.Text;

namespace PgState.Modules.Replication.Saslprep;

/// <summary>
/// SASLprep (RFC 4013) of a password exactly as PostgreSQL's pg_saslprep applies it before computing
/// a SCRAM verifier: an ASCII password as it is; otherwise map (non-ASCII spaces to space, "mapped
/// to nothing" removed), NFKC, then refuse prohibited and unassigned (Unicode 3.2) code points and
/// bad bidirectional text. When it refuses, PostgreSQL uses the raw bytes, and so does pgstate.
/// Tables: Saslprep/tables.txt, written by scripts/gen-saslprep-tables.py.
/// </summary>
public static class SaslPrep
{
    private static readonly Lazy<Tables> Data = new(Tables.Load);

    /// <summary>The bytes a SCRAM verifier is computed from.</summary>
    public static byte[] PasswordBytes(string password) =>
        Prepare(password) is { } prepared ? Encoding.UTF8.GetBytes(prepared) : Encoding.UTF8.GetBytes(password);

    /// <summary>The prepared password, or null when SASLprep refuses it (PostgreSQL then uses the password as given).</summary>
    public static string? Prepare(string password)
    {
        if (password.All(char.IsAscii))
        {
            return password;
        }
        var t = Data.Value;
        var mapped = new List<int>();
        foreach (var rune in password.EnumerateRunes())
        {
            var cp = rune.Value;
            if (t.NonAsciiSpace.Contains(cp))
            {
                mapped.Add(0x20);
            }
            else if (!t.MappedToNothing.Contains(cp))
            {
                mapped.Add(cp);
            }
        }
        if (mapped.Count == 0)
        {
            return null;
        }
        var normalized = t.Nfkc(mapped);
        if (normalized.Any(cp => t.Prohibited.Contains(cp) || t.Unassigned.Contains(cp)))
        {
            return null;
        }
        if (normalized.Any(t.RandAL.Contains))
        {
            if (normalized.Any(t.L.Contains) || !t.RandAL.Contains(normalized[0]) || !t.RandAL.Contains(normalized[^1]))
            {
                return null;
            }
        }
        var sb = new StringBuilder();
        foreach (var cp in normalized)
        {
            sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    /// <summary>Sorted, non-overlapping code point ranges.</summary>
    private sealed class RangeSet((int Start, int End)[] ranges)
    {
        public bool Contains(int cp)
        {
            int lo = 0, hi = ranges.Length - 1;
            while (lo <= hi)
            {
                var mid = (lo + hi) / 2;
                if (cp < ranges[mid].Start)
                {
                    hi = mid - 1;
                }
                else if (cp > ranges[mid].End)
                {
                    lo = mid + 1;
                }
                else
                {
                    return true;
                }
            }
            return false;
        }

        public static RangeSet Parse(string text) => new([.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(r =>
        {
            var dash = r.IndexOf('-', StringComparison.Ordinal);
            return dash < 0 ? (Hex(r), Hex(r)) : (Hex(r[..dash]), Hex(r[(dash + 1)..]));
        })]);
    }

    private static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private sealed class Tables
    {
        private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

        public RangeSet NonAsciiSpace { get; private init; } = null!;
        public RangeSet MappedToNothing { get; private init; } = null!;
        public RangeSet Prohibited { get; private init; } = null!;
        public RangeSet Unassigned { get; private init; } = null!;
        public RangeSet RandAL { get; private init; } = null!;
        public RangeSet L { get; private init; } = null!;
        private Dictionary<int, int> Ccc { get; init; } = null!;
        private Dictionary<int, int[]> Decomposition { get; init; } = null!;
        private Dictionary<(int, int), int> Composition { get; init; } = null!;

        public static Tables Load()
        {
            using var stream = typeof(SaslPrep).Assembly.GetManifestResourceStream("PgState.Modules.Replication.saslprep-tables.txt")
                ?? throw new InvalidOperationException("saslprep tables are not embedded");
            using var reader = new StreamReader(stream);
            var lines = new Dictionary<string, string>(StringComparer.Ordinal);
            while (reader.ReadLine() is { } line)
            {
                if (line.StartsWith('#'))
                {
                    continue;
                }
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                lines[line[..space]] = line[(space + 1)..];
            }
            return new Tables
            {
                NonAsciiSpace = RangeSet.Parse(lines["C12"]),
                MappedToNothing = RangeSet.Parse(lines["B1"]),
                Prohibited = RangeSet.Parse(lines["PROHIBITED"]),
                Unassigned = RangeSet.Parse(lines["A1"]),
                RandAL = RangeSet.Parse(lines["D1"]),
                L = RangeSet.Parse(lines["D2"]),
                Ccc = lines["CCC"].Split(' ').Select(e => e.Split(':')).ToDictionary(p => Hex(p[0]), p => int.Parse(p[1], CultureInfo.InvariantCulture)),
                Decomposition = lines["NFKD"].Split(' ').Select(e => e.Split(':')).ToDictionary(p => Hex(p[0]), p => p[1].Split('.').Select(Hex).ToArray()),
                Composition = lines["COMPOSE"].Split(' ').Select(e => e.Split(':')).ToDictionary(p => (Hex(p[0].Split('.')[0]), Hex(p[0].Split('.')[1])), p => Hex(p[1])),
            };
        }

        private int CombiningClass(int cp) => Ccc.GetValueOrDefault(cp);

        /// <summary>Unicode normalization form KC: compatibility decomposition, canonical order, canonical composition.</summary>
        public List<int> Nfkc(IEnumerable<int> input)
        {
            var d = new List<int>();
            foreach (var cp in input)
            {
                if (cp is >= SBase and < SBase + SCount)
                {
                    var s = cp - SBase;
                    d.Add(LBase + s / NCount);
                    d.Add(VBase + s % NCount / TCount);
                    if (s % TCount != 0)
                    {
                        d.Add(TBase + s % TCount);
                    }
                }
                else if (Decomposition.TryGetValue(cp, out var parts))
                {
                    d.AddRange(parts);
                }
                else
                {
                    d.Add(cp);
                }
            }
            // Canonical ordering: a stable sort of each run of non-starters by combining class.
            for (var i = 0; i < d.Count; i++)
            {
                if (CombiningClass(d[i]) == 0)
                {
                    continue;
                }
                var j = i;
                while (j < d.Count && CombiningClass(d[j]) != 0)
                {
                    j++;
                }
                var run = d.GetRange(i, j - i).Select((cp, k) => (cp, k)).OrderBy(x => CombiningClass(x.cp)).ThenBy(x => x.k).Select(x => x.cp).ToList();
                for (var k = 0; k < run.Count; k++)
                {
                    d[i + k] = run[k];
                }
                i = j;
            }
            // Canonical composition.
            if (d.Count == 0)
            {
                return d;
            }
            var result = new List<int> { d[0] };
            var starter = CombiningClass(d[0]) == 0 ? 0 : -1;
            var lastClass = CombiningClass(d[0]) == 0 ? 0 : 256;
            for (var i = 1; i < d.Count; i++)
            {
                var cp = d[i];
                var cc = CombiningClass(cp);
                if (starter >= 0 && (lastClass < cc || lastClass == 0) && Compose(result[starter], cp) is { } composed
                    && !(lastClass == 0 && result.Count - 1 != starter))
                {
                    result[starter] = composed;
                    continue;
                }
                if (cc == 0)
                {
                    starter = result.Count;
                }
                lastClass = cc;
                result.Add(cp);
            }
            return result;
        }

        private int? Compose(int a, int b)
        {
            if (a is >= LBase and < LBase + LCount && b is >= VBase and < VBase + VCount)
            {
                return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
            }
            if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && b is > TBase and < TBase + TCount)
            {
                return a + (b - TBase);
            }
            return Composition.TryGetValue((a, b), out var c) ? c : null;
        }
    }
}
