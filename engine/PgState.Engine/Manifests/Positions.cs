using Newtonsoft.Json.Linq;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

/// <summary>Marks a property's key position (annotation on a JProperty).</summary>
internal sealed record KeyPosition(SourcePosition Position);

/// <summary>Helpers to get back the YAML position of a manifest node.</summary>
public static class Positions
{
    public static SourcePosition? PositionOf(this JToken? token)
    {
        for (var t = token; t is not null; t = t.Parent)
        {
            var pos = t is JProperty p ? p.Annotation<KeyPosition>()?.Position : t.Annotation<SourcePosition>();
            if (pos is not null)
            {
                return pos;
            }
        }
        return null;
    }

    /// <summary>Position of the key of property <paramref name="name"/> in <paramref name="obj"/>.</summary>
    public static SourcePosition? KeyPositionOf(this JObject obj, string name) =>
        obj.Property(name)?.Annotation<KeyPosition>()?.Position ?? obj.PositionOf();

    /// <summary>A dotted path for messages: spec.archiving.mode, spec.hba.rules[2].</summary>
    public static string PathOf(this JToken token)
    {
        var parts = new List<string>();
        for (JToken? t = token; t is not null; t = t.Parent)
        {
            if (t is JProperty p)
            {
                parts.Add("." + p.Name);
            }
            else if (t.Parent is JArray a)
            {
                parts.Add($"[{a.IndexOf(t)}]");
            }
        }
        parts.Reverse();
        return string.Concat(parts).TrimStart('.');
    }
}
