using System.Text;

namespace PgState.Modules.Hba;

/// <summary>A rule as read from a file, with its 1-based line number.</summary>
public sealed record HbaFileRule(int Line, HbaRule Rule, string Text);

/// <summary>pg_hba.conf text: its rules, and where pgstate's managed block sits, if anywhere.</summary>
public sealed record HbaFile(string Text, IReadOnlyList<HbaFileRule> Rules, (int Start, int End)? Block)
{
    public const string BlockBegin = "# BEGIN pgstate";
    public const string BlockEnd = "# END pgstate";

    /// <summary>Rules inside the managed block (managed-block mode) or all rules (authoritative).</summary>
    public IReadOnlyList<HbaFileRule> RulesIn((int Start, int End)? range) =>
        range is { } r ? [.. Rules.Where(x => x.Line > r.Start && x.Line < r.End)] : Rules;

    /// <summary>Parses the file the way PostgreSQL 15 tokenises it: whitespace-separated fields,
    /// "quoted" tokens, # comments, comma lists; an address without / is followed by its mask.</summary>
    public static HbaFile Parse(string text)
    {
        var rules = new List<HbaFileRule>();
        int? begin = null;
        (int, int)? block = null;
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            var trimmed = line.Trim();
            if (trimmed.StartsWith(BlockBegin, StringComparison.Ordinal))
            {
                begin = i + 1;
                continue;
            }
            if (trimmed.StartsWith(BlockEnd, StringComparison.Ordinal) && begin is { } b)
            {
                block ??= (b, i + 1);
                continue;
            }
            var fields = Tokenize(line);
            if (fields.Count == 0)
            {
                continue;
            }
            if (ToRule(fields) is { } rule)
            {
                rules.Add(new HbaFileRule(i + 1, rule, trimmed));
            }
        }
        return new HbaFile(text, rules, block);
    }

    private static HbaRule? ToRule(List<List<(string Text, bool Quoted)>> fields)
    {
        string Single(int i) => fields[i][0].Text;
        IEnumerable<string> Names(int i) => fields[i].Select(t => t.Quoted ? t.Text : t.Text);
        if (fields.Count < 4)
        {
            return null;
        }
        var type = Single(0).ToLowerInvariant();
        var index = 3;
        string? address = null;
        if (type != "local")
        {
            address = Single(3);
            index = 4;
            if (!address.Contains('/', StringComparison.Ordinal) && System.Net.IPAddress.TryParse(address, out _) && fields.Count > 5)
            {
                address += " " + Single(4);
                index = 5;
            }
        }
        if (fields.Count <= index)
        {
            return null;
        }
        var method = Single(index);
        var options = fields.Skip(index + 1).Select(f => f[0].Text).Select(o =>
        {
            var eq = o.IndexOf('=', StringComparison.Ordinal);
            return eq < 0 ? KeyValuePair.Create(o, "") : KeyValuePair.Create(o[..eq], o[(eq + 1)..]);
        });
        return HbaRule.Create(type, Names(1), Names(2), address, method, options);
    }

    /// <summary>Splits a line into fields; each field is a comma list of tokens.</summary>
    internal static List<List<(string Text, bool Quoted)>> Tokenize(string line)
    {
        var fields = new List<List<(string, bool)>>();
        var i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && char.IsWhiteSpace(line[i]))
            {
                i++;
            }
            if (i >= line.Length || line[i] == '#')
            {
                break;
            }
            var field = new List<(string, bool)>();
            while (true)
            {
                var token = new StringBuilder();
                var quoted = false;
                var inQuotes = false;
                while (i < line.Length && (inQuotes || (!char.IsWhiteSpace(line[i]) && line[i] != ',' && line[i] != '#')))
                {
                    if (line[i] == '"')
                    {
                        if (inQuotes && i + 1 < line.Length && line[i + 1] == '"')
                        {
                            token.Append('"');
                            i += 2;
                            continue;
                        }
                        inQuotes = !inQuotes;
                        quoted = true;
                        i++;
                        continue;
                    }
                    token.Append(line[i]);
                    i++;
                }
                field.Add((token.ToString(), quoted));
                if (i < line.Length && line[i] == ',')
                {
                    i++;
                    continue;
                }
                break;
            }
            fields.Add(field);
        }
        return fields;
    }
}
