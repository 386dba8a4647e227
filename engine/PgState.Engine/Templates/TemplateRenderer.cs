using System.Collections.Concurrent;
using System.Reflection;
using Scriban;
using Scriban.Runtime;

namespace PgState.Engine.Templates;

/// <summary>
/// A template's model, built from plain values (strings, numbers, booleans, lists of models) so
/// Scriban never reflects over .NET types (Native AOT keeps working).
/// </summary>
public sealed class TemplateModel
{
    internal ScriptObject Object { get; } = new();

    public TemplateModel Set(string name, string? value)
    {
        Object.SetValue(name, value, readOnly: true);
        return this;
    }

    public TemplateModel Set(string name, bool value)
    {
        Object.SetValue(name, value, readOnly: true);
        return this;
    }

    public TemplateModel Set(string name, long value)
    {
        Object.SetValue(name, value, readOnly: true);
        return this;
    }

    public TemplateModel Set(string name, IEnumerable<TemplateModel> items)
    {
        var array = new ScriptArray();
        foreach (var item in items)
        {
            array.Add(item.Object);
        }
        Object.SetValue(name, array, readOnly: true);
        return this;
    }

    public TemplateModel Set(string name, IEnumerable<string> items)
    {
        var array = new ScriptArray();
        foreach (var item in items)
        {
            array.Add(item);
        }
        Object.SetValue(name, array, readOnly: true);
        return this;
    }
}

/// <summary>Renders a module's embedded Scriban template as a pure function of a model, never truncated.</summary>
public static class TemplateRenderer
{
    private static readonly ConcurrentDictionary<(Assembly, string), Template> Cache = new();

    /// <summary>Warms Scriban up on another core (first parse and render cost ~30 ms of JIT).</summary>
    public static void Preload() => ThreadPool.UnsafeQueueUserWorkItem(_ =>
    {
        try
        {
            Render(Template.Parse("{{ x }}"), new TemplateModel().Set("x", "1"));
        }
        catch (Exception)
        {
            // only a warm-up
        }
    }, null);

    public static string Render(Assembly assembly, string resourceName, TemplateModel model)
    {
        var template = Cache.GetOrAdd((assembly, resourceName), key =>
        {
            using var stream = key.Item1.GetManifestResourceStream(key.Item2)
                ?? throw new InvalidOperationException($"template {key.Item2} is not embedded in {key.Item1.GetName().Name}");
            using var reader = new StreamReader(stream);
            var parsed = Template.Parse(reader.ReadToEnd(), key.Item2);
            if (parsed.HasErrors)
            {
                throw new InvalidOperationException($"template {key.Item2}: {string.Join("; ", parsed.Messages)}");
            }
            return parsed;
        });
        return Render(template, model);
    }

    private static readonly ScriptObject NoBuiltins = new();

    private static string Render(Template template, TemplateModel model)
    {
        // No limits that cut output: Scriban's defaults stop loops at 1,000 iterations and a
        // string at 1 MB (a 2,100-rule pg_hba.conf was once cut there). Modules check what they
        // render is complete (e.g. the rule count) before using it.
        // No builtin functions (the templates use none): Scriban's default builtins are imported by
        // reflection on first use, about a fifth of a whole plan's CPU time.
        var context = new TemplateContext(NoBuiltins)
        {
            StrictVariables = true,
            LoopLimit = 0,
            LimitToString = 0,
            RecursiveLimit = 64,
            EnableRelaxedMemberAccess = false,
        };
        context.PushGlobal(model.Object);
        return template.Render(context);
    }
}
