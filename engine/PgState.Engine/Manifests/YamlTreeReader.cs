using System.Globalization;
using System.Text.RegularExpressions;
using Newtonsoft.Json.Linq;
using PgState.Engine.Diagnostics;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace PgState.Engine.Manifests;

/// <summary>
/// Reads YAML into JSON tokens that remember their source position, so schema errors can be
/// reported as file:line:col. Plain scalars are typed by the YAML 1.2 core schema; duplicate
/// keys and bad ${env:NAME} references become diagnostics instead of exceptions.
/// </summary>
internal sealed partial class YamlTreeReader(string file, Func<string, string?> environment, DiagnosticBag diagnostics)
{
    private readonly Dictionary<string, JToken> _anchors = new(StringComparer.Ordinal);

    public sealed record Document(JToken? Root, SourcePosition Position);

    public IReadOnlyList<Document> Read(string text)
    {
        var documents = new List<Document>();
        var parser = new Parser(new StringReader(text));
        try
        {
            parser.Consume<StreamStart>();
            while (parser.TryConsume<DocumentStart>(out var start))
            {
                _anchors.Clear();
                var root = parser.Accept<DocumentEnd>(out _) ? null : ReadNode(parser);
                parser.Consume<DocumentEnd>();
                if (root is not null && root.Type != JTokenType.Null)
                {
                    documents.Add(new Document(root, At(start.Start)));
                }
            }
            parser.Consume<StreamEnd>();
        }
        catch (YamlException e)
        {
            var message = e.InnerException?.Message ?? e.Message;
            // YamlDotNet prefixes "(Line: 1, Col: 2, ...): "; the position is ours to print.
            var cut = message.IndexOf("): ", StringComparison.Ordinal);
            if (message.StartsWith("(Line", StringComparison.Ordinal) && cut > 0)
            {
                message = message[(cut + 3)..];
            }
            diagnostics.Error("PGS001", "YAML syntax error: " + message, At(e.Start));
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner can fail this way on an unterminated flow collection.
            var mark = parser.Current?.Start ?? Mark.Empty;
            diagnostics.Error("PGS001", "YAML syntax error: unterminated [ or { collection", At(mark));
        }
        return documents;
    }

    private SourcePosition At(Mark mark) => new(file, (int)Math.Max(1, mark.Line), (int)Math.Max(1, mark.Column));

    private JToken ReadNode(IParser parser)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            if (_anchors.TryGetValue(alias.Value.Value, out var target))
            {
                var copy = target.DeepClone();
                copy.AddAnnotation(At(alias.Start));
                return copy;
            }
            diagnostics.Error("PGS002", $"unknown alias '*{alias.Value.Value}'", At(alias.Start));
            return JValue.CreateNull();
        }

        JToken token;
        string anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            token = ReadScalar(scalar);
            anchor = scalar.Anchor.IsEmpty ? "" : scalar.Anchor.Value;
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            var array = new JArray();
            array.AddAnnotation(At(seqStart.Start));
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                array.Add(ReadNode(parser));
            }
            token = array;
            anchor = seqStart.Anchor.IsEmpty ? "" : seqStart.Anchor.Value;
        }
        else if (parser.TryConsume<MappingStart>(out var mapStart))
        {
            token = ReadMapping(parser, mapStart);
            anchor = mapStart.Anchor.IsEmpty ? "" : mapStart.Anchor.Value;
        }
        else
        {
            var evt = parser.Current!;
            throw new YamlException(evt.Start, evt.End, $"unexpected {evt.GetType().Name}");
        }

        if (anchor.Length > 0)
        {
            _anchors[anchor] = token;
        }
        return token;
    }

    private JObject ReadMapping(IParser parser, MappingStart mapStart)
    {
        var obj = new JObject();
        obj.AddAnnotation(At(mapStart.Start));
        while (!parser.TryConsume<MappingEnd>(out _))
        {
            var keyStart = At(parser.Current!.Start);
            var keyToken = ReadNode(parser);
            var value = ReadNode(parser);
            if (keyToken is not JValue { Value: not null } keyValue)
            {
                diagnostics.Error("PGS003", "a mapping key must be a plain value", keyStart);
                continue;
            }
            var key = Convert.ToString(keyValue.Value, CultureInfo.InvariantCulture)!;
            if (obj.Property(key) is { } existing)
            {
                var first = existing.Annotation<KeyPosition>()?.Position;
                diagnostics.Error("PGS004",
                    $"duplicate key '{key}' (first defined at {first?.Line}:{first?.Column})", keyStart);
                continue;
            }
            var property = new JProperty(key, value);
            property.AddAnnotation(new KeyPosition(keyStart));
            obj.Add(property);
        }
        return obj;
    }

    private JToken ReadScalar(Scalar scalar)
    {
        var position = At(scalar.Start);
        var explicitString = scalar.Tag.IsEmpty ? false : scalar.Tag.Value == "tag:yaml.org,2002:str";
        var text = Interpolate(scalar.Value, position);
        JToken token = scalar.Style == ScalarStyle.Plain && !explicitString
            ? TypePlain(text)
            : new JValue(text);
        token.AddAnnotation(position);
        return token;
    }

    /// <summary>YAML 1.2 core schema: null, bool, int, float, else string.</summary>
    internal static JValue TypePlain(string text)
    {
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return JValue.CreateNull();
            case "true" or "True" or "TRUE":
                return new JValue(true);
            case "false" or "False" or "FALSE":
                return new JValue(false);
        }
        if (IntPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return new JValue(l);
        }
        if (FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return new JValue(d);
        }
        return new JValue(text);
    }

    private string Interpolate(string text, SourcePosition position)
    {
        if (!text.Contains("${", StringComparison.Ordinal))
        {
            return text;
        }
        var result = new System.Text.StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '$' && i + 2 < text.Length && text[i + 1] == '$' && text[i + 2] == '{')
            {
                result.Append("${");   // $${ escapes a literal ${
                i += 3;
                continue;
            }
            if (text[i] == '$' && i + 1 < text.Length && text[i + 1] == '{')
            {
                var close = text.IndexOf('}', i);
                var reference = close < 0 ? text[i..] : text[i..(close + 1)];
                var match = EnvReference().Match(reference);
                if (close < 0 || !match.Success)
                {
                    diagnostics.Error("PGS005",
                        $"bad reference '{reference}': write ${{env:NAME}} with NAME made of letters, digits and _ (or $${{ for a literal)",
                        position);
                    return text;
                }
                var name = match.Groups[1].Value;
                var value = environment(name);
                if (value is null)
                {
                    diagnostics.Error("PGS006", $"environment variable '{name}' is not set (referenced as ${{env:{name}}})", position);
                    return text;
                }
                result.Append(value);
                i = close + 1;
                continue;
            }
            result.Append(text[i]);
            i++;
        }
        return result.ToString();
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();

    [GeneratedRegex(@"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")]
    private static partial Regex EnvReference();
}
